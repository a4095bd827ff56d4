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
import urllib.request
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

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


class _Silence:
    """Bounds each wait of one request for the network (for its headers, then for each read
    of its body) to `limit_s`: the waiting task is cancelled once a wait passes it. A wait
    only notes when it began; the one timer moves when it fires (a timer per read would cost
    more than the read)."""

    def __init__(self, limit_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._limit_s = limit_s
        self._began = self._loop.time()
        self._waiting = True
        self._expired = False
        self._timer = self._loop.call_at(self._began + limit_s, self._check)

    def wait(self) -> None:
        """A wait for the network begins."""
        self._began = self._loop.time()
        self._waiting = True

    def done(self) -> None:
        """The wait is over (data came, or it failed)."""
        self._waiting = False

    def _check(self) -> None:
        now = self._loop.time()
        if not self._waiting or now - self._began < self._limit_s:
            start = self._began if self._waiting else now
            self._timer = self._loop.call_at(start + self._limit_s, self._check)
        elif self._task is not None:
            self._expired = True
            self._task.cancel()

    def timed_out(self) -> bool:
        """After a CancelledError: whether this expiry caused it (and only it); then the
        cancellation is taken back, and the caller raises TimedOut instead."""
        if self._expired and self._task is not None:
            self._expired = False
            return self._task.uncancel() == 0
        return False

    def close(self) -> None:
        self._timer.cancel()


@contextmanager
def _failures(silence: _Silence) -> Iterator[None]:
    """Turns what aiohttp raises, and the expiry of `silence`, into TransportError."""
    try:
        yield
    except asyncio.CancelledError:
        if silence.timed_out():
            raise TimedOut(connecting=False) from None
        raise
    except (TimeoutError, aiohttp.ClientError) as e:
        raise _translated(e) from e


class LoopLag:
    """How late the event loop runs what is due (a moving average): near zero while the
    service keeps up; the length of a loop pass once it is saturated. Measured only while
    a request is in flight (`enter`/`leave`): an idle service does not tick."""

    TICK_S = 0.01

    def __init__(self) -> None:
        self.lag_s = 0.0
        self._active = 0
        self._task: asyncio.Task[None] | None = None

    def enter(self) -> None:
        """A request begins: measure while it lasts."""
        self._active += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._measure(), name="loop-lag")

    def leave(self) -> None:
        self._active -= 1

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while self._active > 0:
            began = loop.time()
            await asyncio.sleep(self.TICK_S)
            late = max(0.0, loop.time() - began - self.TICK_S)
            self.lag_s = 0.8 * self.lag_s + 0.2 * late
        self.lag_s = 0.0

    def pause_s(self) -> float:
        """How long a stream waits between two reads, so that what arrives meanwhile comes
        in one read (and one event): nothing while the loop keeps up; under load a few
        loop passes, at most PACE_MAX_S."""
        lag = self.lag_s
        return 0.0 if lag < PACE_AFTER_LAG_S else min(PACE_MAX_S, PACE_FACTOR * lag)


_LAGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """The running loop's LoopLag, shared by every stream the loop reads (the HttpClient's
    and the scripted provider's): one measuring task per loop, not one per stream."""
    loop = asyncio.get_running_loop()
    lag = _LAGS.get(loop)
    if lag is None:
        lag = _LAGS[loop] = LoopLag()
    return lag


# Reads are paced once the loop runs this late...
PACE_AFTER_LAG_S = 0.003
# ...by this many times the lag, at most PACE_MAX_S.
PACE_FACTOR = 60.0
PACE_MAX_S = 0.25


class Response:
    """A response being read: its status and headers, then its body once."""

    def __init__(self, raw: aiohttp.ClientResponse, silence: _Silence, lag: LoopLag) -> None:
        self._raw = raw
        self._silence = silence
        self._lag = lag
        self.status = raw.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._raw.headers

    def header(self, name: str) -> str:
        return self._raw.headers.get(name, "")

    async def read(self) -> bytes:
        self._silence.wait()
        with _failures(self._silence):
            return await self._raw.read()

    async def texts(self) -> AsyncIterator[str]:
        """The body as UTF-8 text (what event streams are), one piece per network read."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        content, silence = self._raw.content, self._silence
        with _failures(silence):
            while True:
                silence.wait()
                data = await content.readany()
                silence.done()
                if not data:
                    break
                if text := decoder.decode(data):
                    yield text
                if pause := self._lag.pause_s():
                    await asyncio.sleep(pause)
        if tail := decoder.decode(b"", final=True):
            yield tail


class HttpClient:
    """The providers' connection pool. `read_timeout_s` bounds the silence between two reads
    of a response (a stalled stream fails instead of hanging); the session is made on first
    use, inside the event loop that uses it."""

    def __init__(self, *, connect_timeout_s: float = 10.0, read_timeout_s: float = 300.0) -> None:
        # The silence between reads is bounded by _Silence, not by aiohttp's sock_read (it
        # re-arms a timer on every read).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._read_timeout_s = read_timeout_s
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY and NO_PROXY as the service started with them, read once (aiohttp's
        # trust_env would read them, and ~/.netrc, on every request).
        self._proxies = urllib.request.getproxies_environment()
        self._proxy_of: dict[tuple[str, str], str | None] = {}

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for `url`, or None."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxy_of:
            proxy = self._proxies.get(parts.scheme)
            host = parts.hostname or ""
            if proxy and urllib.request.proxy_bypass(host):
                proxy = None
            self._proxy_of[key] = proxy or None
        return self._proxy_of[key]

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0),
                timeout=self._timeout,
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
        silence = _Silence(self._read_timeout_s)  # waiting for the headers counts too
        lag = loop_lag()
        lag.enter()
        try:
            with _failures(silence):
                raw = await self._pool().request(
                    method, url, headers=dict(headers), json=json, params=list(params),
                    proxy=self._proxy(url),
                )  # fmt: skip
            silence.done()
            try:
                yield Response(raw, silence, lag)
            finally:
                raw.release()
        finally:
            silence.close()
            lag.leave()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
