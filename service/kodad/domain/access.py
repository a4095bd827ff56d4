"""Who is calling, what they may see, and the limits every caller shares."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from kodad.domain.errors import PermissionDenied
from kodad.domain.model import ProviderConfig, ProviderKind


@dataclass(frozen=True)
class Caller:
    """The identity a call runs as: its tenant, whether it is an admin (sees every tenant's
    sessions), and the directories its sessions may use (anywhere when empty)."""

    tenant: str = ""
    admin: bool = False
    workspace_roots: tuple[Path, ...] = ()
    # The SHA-256 of the bearer token it came with, so revoking the token ends its calls.
    token_sha256: str = ""

    def sees(self, tenant: str) -> bool:
        return self.admin or tenant == self.tenant

    def check_workspace(self, workspace: str) -> None:
        """PermissionDenied unless `workspace` (symlinks resolved) lies under a root."""
        if not self.workspace_roots:
            return
        real = Path(os.path.realpath(workspace))
        for root in self.workspace_roots:
            if real.is_relative_to(Path(os.path.realpath(root))):
                return
        roots = ", ".join(str(r) for r in self.workspace_roots)
        raise PermissionDenied(f"workspace {workspace} is outside the allowed roots ({roots})")


# In-process callers and a server without authentication: every session, any workspace.
LOCAL = Caller(admin=True)


@dataclass(frozen=True)
class Limits:
    """Configurable limits; hitting one is RESOURCE_EXHAUSTED naming it. 0 disables one."""

    sessions_per_tenant: int = 10_000
    turns: int = 256
    turns_per_tenant: int = 64
    input_bytes: int = 1024 * 1024
    watchers_per_session: int = 64


# The vendors' API hosts, where a session with an empty base_url sends its requests.
OFFICIAL_HOSTS = {
    ProviderKind.OPENAI_COMPATIBLE: "api.openai.com",
    ProviderKind.ANTHROPIC: "api.anthropic.com",
}


def provider_host(config: ProviderConfig) -> str:
    """The host a provider's requests (and so its API key) go to."""
    if config.base_url:
        return (urlparse(config.base_url).hostname or "").lower()
    return OFFICIAL_HOSTS.get(config.kind, "")


@dataclass(frozen=True)
class ProviderKeys:
    """The environment variables a session's provider may name as its API key (the
    operator's `--provider-key-env NAME[=HOST]`), each bound to the host it may be sent to
    (None: any host). Without this, a caller could name any variable of the service and
    point base_url at its own server to receive it."""

    grants: tuple[tuple[str, str | None], ...] = (
        ("OPENAI_API_KEY", "api.openai.com"),
        ("ANTHROPIC_API_KEY", "api.anthropic.com"),
    )

    def with_default(self, config: ProviderConfig) -> ProviderKeys:
        """These grants and the server's default provider's key, bound to its host."""
        if not config.api_key_env:
            return self
        grant = (config.api_key_env, provider_host(config) or None)
        return self if grant in self.grants else ProviderKeys((*self.grants, grant))

    def check(self, config: ProviderConfig) -> None:
        """PermissionDenied unless `config` may use its api_key_env at its host."""
        name = config.api_key_env
        if not name:
            return
        host = provider_host(config)
        hosts = [h for n, h in self.grants if n == name]
        if not hosts:
            allowed = ", ".join(sorted({n for n, _ in self.grants})) or "none"
            raise PermissionDenied(
                f"session.provider.api_key_env {name} is not a key this server lends "
                f"(allowed: {allowed}; the operator adds one with --provider-key-env)"
            )
        if None not in hosts and host not in hosts:
            raise PermissionDenied(
                f"session.provider.api_key_env {name} may only be sent to "
                f"{', '.join(sorted(h for h in hosts if h))}, not to {host or 'this base_url'}"
            )

    @classmethod
    def parse(cls, values: list[str]) -> tuple[tuple[str, str | None], ...]:
        """`NAME` or `NAME=HOST` flags as grants; ValueError names a bad one."""
        grants: list[tuple[str, str | None]] = []
        for value in values:
            name, _, host = value.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or (
                host and not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]", host)
            ):
                raise ValueError(f"--provider-key-env {value!r}: give NAME or NAME=HOST")
            grants.append((name, host.lower().strip("[]") or None))
        return tuple(grants)
