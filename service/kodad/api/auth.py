"""Authentication: bearer tokens from a tokens file (reloaded on SIGHUP) or client
certificates (mutual TLS), each mapped to a tenant, and a sidecar's per-launch token (the
local admin). No credentials configured: every caller is the local admin."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from kodad.api.errors import abort
from kodad.domain.access import Caller
from kodad.domain.errors import ConfigError, Unauthenticated

log = logging.getLogger(__name__)

_TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class TokensFileError(ConfigError):
    """The tokens file cannot be used; the message says where."""


def hash_token(token: str) -> str:
    """What the tokens file stores for a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "kd_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class _Entry:
    tenant: str
    admin: bool
    workspace_roots: tuple[Path, ...] | None


def _tenant(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _TENANT_CHARS:
        raise TokensFileError(f"{where}: tenant must be a non-empty name of [A-Za-z0-9._-@]")
    return value


def parse_tokens(text: str) -> dict[str, _Entry]:
    """Parses a tokens file:

    [[tokens]]
    sha256 = "<hex of the token's SHA-256>"   # `kodad token new` prints one
    tenant = "acme"
    role = "admin"                            # optional: sees every tenant
    workspace_roots = ["/srv/acme"]           # optional: overrides the server's roots
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TokensFileError(f"not valid TOML: {e}") from e
    entries: dict[str, _Entry] = {}
    tokens = data.get("tokens", [])
    if not isinstance(tokens, list):
        raise TokensFileError("`tokens` must be an array of tables ([[tokens]])")
    for i, item in enumerate(tokens):
        where = f"tokens[{i}]"
        if not isinstance(item, dict):
            raise TokensFileError(f"{where} must be a table")
        digest = item.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise TokensFileError(f"{where}: sha256 must be 64 hex digits")
        role = item.get("role", "")
        if role not in ("", "admin"):
            raise TokensFileError(f"{where}: role must be 'admin' or absent, got {role!r}")
        roots = item.get("workspace_roots")
        if roots is not None and (
            not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots)
        ):
            raise TokensFileError(f"{where}: workspace_roots must be a list of paths")
        entries[digest.lower()] = _Entry(
            tenant=_tenant(item.get("tenant"), where),
            admin=role == "admin",
            workspace_roots=None if roots is None else tuple(Path(r) for r in roots),
        )
    return entries


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


class Authenticator:
    """Turns a call's credentials into a Caller, or raises Unauthenticated."""

    def __init__(
        self,
        *,
        tokens_file: Path | None = None,
        client_certificates: bool = False,
        workspace_roots: tuple[Path, ...] = (),
        launch_token: str = "",
    ) -> None:
        self.tokens_file = tokens_file
        self.launch_token = launch_token
        self.client_certificates = client_certificates
        self.workspace_roots = workspace_roots
        self._tokens: Mapping[str, _Entry] = {}
        if tokens_file is not None:
            self._tokens = self._read()
        self._reloaded = asyncio.Event()  # set (and replaced) at every reload

    @property
    def enabled(self) -> bool:
        return self.tokens_file is not None or self.client_certificates or bool(self.launch_token)

    def _read(self) -> dict[str, _Entry]:
        assert self.tokens_file is not None
        try:
            text = self.tokens_file.read_text()
        except OSError as e:
            raise TokensFileError(f"cannot read {self.tokens_file}: {e.strerror}") from e
        try:
            return parse_tokens(text)
        except TokensFileError as e:
            raise TokensFileError(f"{self.tokens_file}: {e}") from e

    def reload(self) -> None:
        """Rereads the tokens file; a broken file keeps the previous tokens."""
        if self.tokens_file is None:
            return
        try:
            self._tokens = self._read()
        except TokensFileError as e:
            log.error("tokens not reloaded, the previous ones stay: %s", e)
            return
        log.info("reloaded %d token(s) from %s", len(self._tokens), self.tokens_file)
        reloaded, self._reloaded = self._reloaded, asyncio.Event()
        reloaded.set()

    def revoked(self, caller: Caller) -> bool:
        """Whether the token `caller` came with is no longer in the tokens file."""
        return bool(caller.token_sha256) and caller.token_sha256 not in self._tokens

    async def wait_revoked(self, caller: Caller) -> None:
        """Returns once a reload has removed `caller`'s token (never for other callers)."""
        while not self.revoked(caller):
            await self._reloaded.wait()

    def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        if not self.enabled:
            return Caller(admin=True, workspace_roots=self.workspace_roots)
        caller = self.bearer(tuple(context.invocation_metadata() or ()))
        if caller is not None:
            return caller
        if self.client_certificates:
            # The certificate's common name, else its first subject alternative name.
            peer = context.auth_context()
            for key in ("x509_common_name", "x509_subject_alternative_name"):
                names = [n.decode(errors="replace") for n in peer.get(key) or () if n]
                if names:
                    return Caller(tenant=names[0], workspace_roots=self.workspace_roots)
            raise Unauthenticated("the client certificate names no tenant (no CN or SAN)")
        raise Unauthenticated("missing credentials: send 'authorization: Bearer <token>'")

    def bearer(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller | None:
        """The caller a call's bearer token names; None without one; Unauthenticated for a
        malformed or unknown token."""
        header = ""
        for key, value in metadata:
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode(errors="replace")
                break
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization header must be 'Bearer <token>'")
        token = token.strip()
        if self.launch_token and hmac.compare_digest(token, self.launch_token):
            return Caller(admin=True, workspace_roots=self.workspace_roots)
        digest = hash_token(token)
        entry = self._tokens.get(digest)
        if entry is None:
            raise Unauthenticated("the bearer token is not valid")
        roots = self.workspace_roots if entry.workspace_roots is None else entry.workspace_roots
        return Caller(
            tenant=entry.tenant, admin=entry.admin, workspace_roots=roots, token_sha256=digest
        )


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class ReflectionAuth(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Server reflection describes the whole API: with authentication on, it needs a valid
    bearer token too (or the client certificate TLS already checked). Health stays open."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        auth = self._auth
        if (
            details.method.startswith("/grpc.reflection.")
            and auth.enabled
            and not auth.client_certificates
        ):
            try:
                if auth.bearer(details.invocation_metadata or ()) is None:
                    raise Unauthenticated(
                        "missing credentials: send 'authorization: Bearer <token>'"
                    )
            except Unauthenticated as e:
                return _refusal(str(e))
        return await continuation(details)


def _refusal(message: str) -> grpc.RpcMethodHandler[Any, Any]:
    async def refuse(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort(context, Unauthenticated(message))

    return grpc.stream_stream_rpc_method_handler(refuse)
