"""Checks on what clients send; each failure names the field (InvalidArgument)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from urllib.parse import urlparse

from kodad.domain import jsontext
from kodad.domain.errors import InvalidArgument
from kodad.domain.model import ApprovalRule, Image, McpServerSpec, ProviderConfig, ProviderKind
from kodad.providers import SERVED_KINDS, ScriptError, parse_script

MAX_TITLE = 512
MAX_SYSTEM_PROMPT = 256 * 1024
MAX_LOOP_CAP = 10_000
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_PAGE_SIZE = 1000
MAX_APPROVAL_TIMEOUT_MS = 24 * 3600 * 1000
DEFAULT_PAGE_SIZE = 100

_LABEL_KEY = re.compile(r"[a-z0-9_.-]{1,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MCP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
MAX_MCP_SERVERS = 16
MAX_APPROVAL_RULES = 256
MAX_RULE_PREFIX = 1024
MAX_TOKENS_FIELDS = ("", "max_tokens", "max_completion_tokens")


def mcp_servers(
    servers: tuple[McpServerSpec, ...], where: str = "session.mcp_servers"
) -> tuple[McpServerSpec, ...]:
    if len(servers) > MAX_MCP_SERVERS:
        raise InvalidArgument(f"{where} has {len(servers)} servers, at most {MAX_MCP_SERVERS}")
    seen: set[str] = set()
    for i, s in enumerate(servers):
        at = f"{where}[{i}]"
        if not _MCP_NAME.fullmatch(s.name):
            raise InvalidArgument(
                f"{at}.name {s.name!r} must be 1-32 characters of [A-Za-z0-9-], not starting"
                " with '-'"
            )
        if s.name in seen:
            raise InvalidArgument(f"{at}.name {s.name!r} is used twice")
        seen.add(s.name)
        if bool(s.command) == bool(s.url):
            raise InvalidArgument(f"{at} must set exactly one of command and url")
        if s.command and (not s.command[0] or any("\x00" in a for a in s.command)):
            raise InvalidArgument(f"{at}.command needs a program and no NUL characters")
        if s.url:
            parsed = urlparse(s.url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise InvalidArgument(f"{at}.url must be an http or https URL, got {s.url!r}")
        if s.header_env and not s.url:
            raise InvalidArgument(f"{at}.header_env is for url servers")
        if s.env_from and not s.command:
            raise InvalidArgument(f"{at}.env_from is for command servers")
        for header, variable in s.header_env:
            if not _HEADER_NAME.fullmatch(header) or not _ENV_NAME.fullmatch(variable):
                raise InvalidArgument(
                    f"{at}.header_env maps header names to environment variable names,"
                    f" got {header!r}: {variable!r}"
                )
        for name, variable in s.env_from:
            if not _ENV_NAME.fullmatch(name) or not _ENV_NAME.fullmatch(variable):
                raise InvalidArgument(
                    f"{at}.env_from maps variable names to variable names,"
                    f" got {name!r}: {variable!r}"
                )
    return servers


def workspace(path: str) -> str:
    if not path:
        raise InvalidArgument("session.workspace is required")
    if "\x00" in path:
        raise InvalidArgument("session.workspace must not contain a NUL character")
    p = Path(path)
    if not p.is_absolute():
        raise InvalidArgument(f"session.workspace must be an absolute path, got {path!r}")
    if not p.is_dir():
        raise InvalidArgument(f"session.workspace {path!r} is not an existing directory")
    return str(p.resolve())


def title(value: str) -> str:
    if len(value) > MAX_TITLE:
        raise InvalidArgument(f"session.title is longer than {MAX_TITLE} characters")
    return value


def system_prompt(value: str) -> str:
    if len(value.encode()) > MAX_SYSTEM_PROMPT:
        raise InvalidArgument(f"session.system_prompt is larger than {MAX_SYSTEM_PROMPT} bytes")
    return value


def loop_cap(value: int) -> int:
    if not 0 <= value <= MAX_LOOP_CAP:
        raise InvalidArgument(f"session.loop_cap must be between 0 and {MAX_LOOP_CAP}, got {value}")
    return value


def label_filter(values: Mapping[str, str]) -> Mapping[str, str]:
    """A ListSessions filter: as many labels as a session may carry, at most."""
    if len(values) > MAX_LABELS:
        raise InvalidArgument(
            f"labels has {len(values)} entries; a filter has at most {MAX_LABELS}"
        )
    for key, value in values.items():
        if len(key) > 63 or len(value) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"labels filter entry {key[:63]!r} is longer than a label may be")
    return values


def labels(values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > MAX_LABELS:
        raise InvalidArgument(f"session.labels has more than {MAX_LABELS} entries")
    for key, value in values.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"label key {key!r} must be 1-63 characters of lowercase letters, digits, _ . -"
            )
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"label {key!r} has a value longer than {MAX_LABEL_VALUE}")
    return dict(values)


def provider(config: ProviderConfig) -> ProviderConfig:
    if config.kind not in SERVED_KINDS:
        served = ", ".join(k.name for k in SERVED_KINDS)
        raise InvalidArgument(
            f"session.provider.kind {config.kind.name} is not served here (served: {served})"
        )
    if config.kind is not ProviderKind.SCRIPTED and not config.model:
        raise InvalidArgument(f"session.provider.model is required for {config.kind.name}")
    if config.base_url:
        url = urlparse(config.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise InvalidArgument(
                f"session.provider.base_url must be an http(s) URL, got {config.base_url!r}"
            )
    if config.api_key_env and not _ENV_NAME.fullmatch(config.api_key_env):
        raise InvalidArgument(
            "session.provider.api_key_env must name an environment variable "
            f"(letters, digits, _), got {config.api_key_env!r}"
        )
    if config.max_output_tokens < 0:
        raise InvalidArgument("session.provider.max_output_tokens must not be negative")
    if config.thinking_budget_tokens and not 1024 <= config.thinking_budget_tokens <= 1_000_000:
        raise InvalidArgument(
            "session.provider.thinking_budget_tokens must be 0 or between 1024 and 1000000"
        )
    if config.context_window_tokens and not 1024 <= config.context_window_tokens <= 100_000_000:
        raise InvalidArgument("session.provider.context_window_tokens must be 0 or at least 1024")
    if config.max_tokens_field not in MAX_TOKENS_FIELDS:
        raise InvalidArgument(
            "session.provider.max_tokens_field must be empty, max_tokens or "
            f"max_completion_tokens, got {config.max_tokens_field[:64]!r}"
        )
    if config.max_tokens_field and config.kind is not ProviderKind.OPENAI_COMPATIBLE:
        raise InvalidArgument("session.provider.max_tokens_field is for OPENAI_COMPATIBLE only")
    if config.disable_prompt_caching and config.kind is not ProviderKind.ANTHROPIC:
        raise InvalidArgument("session.provider.disable_prompt_caching is for ANTHROPIC only")
    if config.script_json:
        if config.kind is not ProviderKind.SCRIPTED:
            raise InvalidArgument("session.provider.script_json is only for SCRIPTED providers")
        try:
            parse_script(config.script_json)
        except ScriptError as e:
            raise InvalidArgument(f"session.provider.script_json: {e}") from None
    return config


def turn_input(text: str, images: tuple[Image, ...]) -> None:
    if not text and not images:
        raise InvalidArgument("start_turn.text is required (or images)")
    if len(images) > MAX_IMAGES:
        raise InvalidArgument(f"start_turn.images has more than {MAX_IMAGES} images")
    for i, image in enumerate(images):
        if image.mime_type not in IMAGE_TYPES:
            raise InvalidArgument(
                f"start_turn.images[{i}].mime_type {image.mime_type!r} is not one of "
                + ", ".join(sorted(IMAGE_TYPES))
            )
        if not image.data or len(image.data) > MAX_IMAGE_BYTES:
            raise InvalidArgument(f"start_turn.images[{i}].data must be 1 byte to 5 MiB")


def approval_timeout_ms(value: int) -> int:
    if not 0 <= value <= MAX_APPROVAL_TIMEOUT_MS:
        raise InvalidArgument("session.approval_timeout must be between 0 and 24 hours")
    return value


def approval_rules(
    rules: tuple[ApprovalRule, ...], tool_names: Collection[str]
) -> tuple[ApprovalRule, ...]:
    if len(rules) > MAX_APPROVAL_RULES:
        raise InvalidArgument(
            f"session.approval_rules has {len(rules)} rules, at most {MAX_APPROVAL_RULES}"
        )
    for i, rule in enumerate(rules):
        if len(rule.command_prefix) > MAX_RULE_PREFIX or len(rule.tool_name) > MAX_RULE_PREFIX:
            raise InvalidArgument(
                f"session.approval_rules[{i}] is longer than {MAX_RULE_PREFIX} characters"
            )
        if rule.tool_name not in tool_names and "__" not in rule.tool_name:  # "__": MCP tools
            raise InvalidArgument(
                f"session.approval_rules[{i}].tool_name {rule.tool_name!r} is not a tool"
            )
        if rule.command_prefix and rule.tool_name != "bash":
            raise InvalidArgument(
                f"session.approval_rules[{i}].command_prefix is only for the bash tool"
            )
    return tuple(dict.fromkeys(rules))


def page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


def encode_page_token(position: str | int, scope: str) -> str:
    raw = json.dumps({"p": position, "s": scope}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, scope: str) -> str | int | None:
    """The position a token continues from, None for an empty token."""
    if not token:
        return None
    try:
        body = jsontext.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = body["p"]
        token_scope = body["s"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token is not a token this service issued") from None
    if token_scope != scope or not isinstance(position, str | int):
        raise InvalidArgument("page_token belongs to a different request")
    return position
