"""Server configuration: defaults, environment (KODAD_*), then command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kodad.domain.access import ProviderKeys
from kodad.domain.errors import ConfigError
from kodad.domain.model import ProviderConfig, ProviderKind
from kodad.engine.settings import EngineSettings
from kodad.paths import user_dir
from kodad.providers.scripted import ScriptError, parse_script

_KINDS = {
    "scripted": ProviderKind.SCRIPTED,
    "openai": ProviderKind.OPENAI_COMPATIBLE,
    "openai_compatible": ProviderKind.OPENAI_COMPATIBLE,
    "anthropic": ProviderKind.ANTHROPIC,
}
_KEY_VARIABLES = {
    ProviderKind.OPENAI_COMPATIBLE: "OPENAI_API_KEY",
    ProviderKind.ANTHROPIC: "ANTHROPIC_API_KEY",
}
_DEFAULT_MODELS = {
    ProviderKind.OPENAI_COMPATIBLE: "gpt-4o-mini",
    ProviderKind.ANTHROPIC: "claude-sonnet-4-5",
}


def default_data_dir() -> Path:
    return user_dir("data")


def provider_from_env(env: Mapping[str, str]) -> ProviderConfig:
    """The provider of sessions created without one: KODAD_PROVIDER (scripted, openai,
    anthropic), KODAD_MODEL, KODAD_BASE_URL, and OPENAI_API_KEY / ANTHROPIC_API_KEY. With
    nothing set: the offline scripted provider, playing KODAD_SCRIPT_JSON when it is set
    (see `scripted_default`)."""
    name = env.get("KODAD_PROVIDER", "").strip().lower()
    if name:
        if name not in _KINDS:
            raise ConfigError(f"KODAD_PROVIDER={name!r} is not one of {', '.join(sorted(_KINDS))}")
        kind = _KINDS[name]
    elif env.get("ANTHROPIC_API_KEY"):
        kind = ProviderKind.ANTHROPIC
    elif env.get("OPENAI_API_KEY") or env.get("KODAD_BASE_URL"):
        kind = ProviderKind.OPENAI_COMPATIBLE
    else:
        kind = ProviderKind.SCRIPTED
    if kind is ProviderKind.SCRIPTED:
        return scripted_default(env.get("KODAD_SCRIPT_JSON", ""), "KODAD_SCRIPT_JSON")
    key_variable = _KEY_VARIABLES[kind]
    return ProviderConfig(
        kind=kind,
        model=env.get("KODAD_MODEL") or _DEFAULT_MODELS[kind],
        base_url=env.get("KODAD_BASE_URL", ""),
        api_key_env=key_variable if env.get(key_variable) else "",
    )


def scripted_default(script_json: str, source: str) -> ProviderConfig:
    """The scripted provider playing `script_json` (the echo when empty) for sessions
    created without a provider: a demo or a test of a client that cannot pass a script
    itself. A bad script is a ConfigError naming `source`, at start-up."""
    if script_json.strip():
        try:
            parse_script(script_json)
        except ScriptError as e:
            raise ConfigError(f"{source}: {e}") from None
    return ProviderConfig(kind=ProviderKind.SCRIPTED, script_json=script_json.strip())


def unix_socket_path(listen: str) -> Path | None:
    """The socket file of a unix:PATH or unix:///PATH address, else None."""
    if not listen.startswith("unix:"):
        return None
    rest = listen.removeprefix("unix:")
    return Path("/" + rest.lstrip("/")) if rest.startswith("//") else Path(rest)


def is_loopback(listen: str) -> bool:
    """Whether `listen` (host:port or unix:path) is reachable from this machine only."""
    if listen.startswith("unix:"):
        return True
    host = listen.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass(frozen=True)
class Security:
    """Who may call: bearer tokens (tokens file), client certificates, or (loopback or
    `insecure_no_auth`) anyone; TLS; and where sessions may work."""

    tokens_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    insecure_no_auth: bool = False
    workspace_roots: tuple[Path, ...] = ()
    # A sidecar's per-launch bearer token (kodad serve --launch-token): the local admin.
    launch_token: str = ""

    def check(self, listen: str) -> None:
        """ConfigError when the combination is unsafe or incomplete."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ConfigError("--client-ca (mutual TLS) needs --tls-cert and --tls-key")
        authenticated = (
            self.tokens_file is not None or self.client_ca is not None or bool(self.launch_token)
        )
        if not authenticated and not is_loopback(listen) and not self.insecure_no_auth:
            raise ConfigError(
                f"refusing to serve on {listen} without authentication: anyone reaching it "
                "could run commands on this host. Give --tokens-file (bearer tokens) or "
                "--client-ca with --tls-cert/--tls-key (mutual TLS), or --insecure-no-auth."
            )


@dataclass(frozen=True)
class SandboxConfig:
    """How sessions' processes are confined (see tools/sandbox.py)."""

    # Host directories shown read-only inside the sandbox beyond the system's (toolchains).
    read_paths: tuple[Path, ...] = ()
    # Admin callers may give sessions SandboxPolicy.FULL_ACCESS.
    allow_full_access: bool = False
    # Serve beyond loopback although this host has no sandbox (commands run unconfined).
    allow_unsandboxed: bool = False

    def check(self, listen: str, available: bool, reason: str) -> None:
        """ConfigError when serving beyond loopback without a sandbox was not asked for."""
        if not available and not is_loopback(listen) and not self.allow_unsandboxed:
            raise ConfigError(
                f"refusing to serve on {listen} without a sandbox ({reason}): sessions' "
                "commands would run unconfined on this host. Install bubblewrap, or give "
                "--allow-unsandboxed."
            )


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    data_dir: Path = field(default_factory=default_data_dir)
    # "" for the SQLite file in data_dir; postgres://… for a database replicas share.
    store: str = ""
    replica_id: str = ""
    lease_ttl_s: float = 15.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    security: Security = field(default_factory=Security)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    metrics_listen: str = ""
    # Sidecar mode: print one JSON line on stdout once serving; exit with the parent.
    ready_json: bool = False
    exit_with_parent: bool = False
    # web_fetch may reach loopback, private and link-local addresses.
    allow_private_fetch: bool = False
    shutdown_grace_s: float = 5.0
    max_message_bytes: int = 64 * 1024 * 1024
    # Connections idle this long are closed; dead peers are found by keepalive pings.
    idle_timeout_s: float = 3600.0
    keepalive_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    provider_connect_timeout_s: float = 10.0
    provider_read_timeout_s: float = 300.0
    provider_retry_attempts: int = 4
    provider_retry_base_delay_s: float = 0.5

    @property
    def database(self) -> Path:
        return self.data_dir / "kodad.db"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerConfig:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            listen=env.get("KODAD_LISTEN") or defaults.listen,
            store=env.get("KODAD_STORE", ""),
            data_dir=Path(env["KODAD_DATA_DIR"])
            if env.get("KODAD_DATA_DIR")
            else defaults.data_dir,
            engine=EngineSettings(
                default_provider=provider_from_env(env),
                provider_keys=ProviderKeys(
                    (
                        *ProviderKeys().grants,
                        *ProviderKeys.parse(
                            [v for v in env.get("KODAD_PROVIDER_KEY_ENV", "").split(",") if v]
                        ),
                    )
                ),
                profiles_dir=Path(env["KODAD_PROFILES_DIR"])
                if env.get("KODAD_PROFILES_DIR")
                else user_dir("config", env) / "agents",
            ),
            security=Security(
                tokens_file=Path(env["KODAD_TOKENS_FILE"])
                if env.get("KODAD_TOKENS_FILE")
                else None,
                workspace_roots=tuple(
                    Path(p) for p in env.get("KODAD_WORKSPACE_ROOTS", "").split(":") if p
                ),
            ),
            sandbox=SandboxConfig(
                read_paths=tuple(
                    Path(p) for p in env.get("KODAD_SANDBOX_READ", "").split(":") if p
                ),
            ),
        )
