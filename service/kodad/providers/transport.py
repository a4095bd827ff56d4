"""The HTTP client of every provider: one pooled aiohttp session, and three failures a caller
maps to its errors (connecting failed, a timeout, the connection lost mid-response).

A streamed body is read per network read: `Response.texts()` yields all the body a read
brought, whatever its chunking, so a stream that fell behind costs one step for many events
(aiohttp decodes HTTP with its C parser; a body stays bytes until it is read).
"""

from __future__ import annotations

import asyncio
import codecs
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

# Connections kept open to all providers at once; more requests wait for one.
MAX_CONNECTIONS = 1000


class TransportError(Exception):
    """The request failed below HTTP; str() says why, without the URL."""


class ConnectFailed(TransportError):
    """No connection: refused, unreachable, a name that does not resolve, TLS failed."""


class TimedOut(TransportError):
    """Connecting took longer than the connect timeout (`connecting`), or the server was
    silent longer than the read timeout."""

    def __init__(self, connecting: bool) -> None:
        super().__init__("connecting" if connecting else "waiting for data")
        self.connecting = connecting


class ConnectionLost(TransportError):
    """The server closed the connection, or broke the HTTP framing, mid-request."""


def _why(e: BaseException) -> str:
    """What went wrong, without the URL (the caller names it once)."""
    if isinstance(e, aiohttp.ClientConnectorError):
        error = e.os_error  # its own text may name the address again
        if isinstance(error.errno, int) and error.errno > 0:
            return os.strerror(error.errno)
        return error.strerror or str(error) or type(error).__name__
    return str(e) or type(e).__name__


def _translated(e: BaseException) -> TransportError:
    if isinstance(e, aiohttp.ConnectionTimeoutError):
        return TimedOut(connecting=True)
    if isinstance(e, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return TimedOut(connecting=False)
    if isinstance(e, aiohttp.ClientConnectorError):
        return ConnectFailed(_why(e))
    return ConnectionLost(_why(e))


class Response:
    """A response being read: its status and headers, then its body once."""

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw
        self.status = raw.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._raw.headers

    def header(self, name: str) -> str:
        return self._raw.headers.get(name, "")

    async def read(self) -> bytes:
        try:
            return await self._raw.read()
        except (TimeoutError, aiohttp.ClientError) as e:
            raise _translated(e) from e

    async def texts(self) -> AsyncIterator[str]:
        """The body as UTF-8 text (what event streams are), one piece per network read."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        content = self._raw.content
        try:
            while data := await content.readany():
                if text := decoder.decode(data):
                    yield text
        except (TimeoutError, aiohttp.ClientError) as e:
            raise _translated(e) from e
        if tail := decoder.decode(b"", final=True):
            yield tail


class HttpClient:
    """The providers' connection pool. `read_timeout_s` bounds the silence between two reads
    of a response (a stalled stream fails instead of hanging); the session is made on first
    use, inside the event loop that uses it."""

    def __init__(self, *, connect_timeout_s: float = 10.0, read_timeout_s: float = 300.0) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0),
                timeout=self._timeout,
                trust_env=True,  # HTTP(S)_PROXY and NO_PROXY, as providers' users expect
                auto_decompress=True,
            )
        return self._session

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Iterable[tuple[str, str]] = (),
    ) -> AsyncIterator[Response]:
        """Sends a request; the response's headers are in, its body not yet read. Raises
        TransportError subclasses for failures below HTTP."""
        try:
            raw = await self._pool().request(
                method, url, headers=dict(headers), json=json, params=list(params)
            )
        except (TimeoutError, aiohttp.ClientError) as e:
            raise _translated(e) from e
        try:
            yield Response(raw)
        finally:
            raw.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
