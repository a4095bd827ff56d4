"""What every HTTP provider shares: one streaming POST with retries before the first event,
and one mapping from HTTP failures to stable error codes."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kodad.domain import jsontext
from kodad.domain.events import RateLimit
from kodad.providers.base import (
    ProviderError,
    ProviderEvent,
    ProviderNotice,
    RateLimitReport,
    Retry,
    ToolCallReady,
)
from kodad.providers.transport import HttpClient, Response, TimedOut, TransportError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 529})
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
)

Sleep = Callable[[float], Any]
# Reads a streamed answer from its body's text, one piece per network read.
Reader = Callable[[AsyncIterator[str]], AsyncIterator[ProviderEvent]]
# Reads a whole (not streamed) JSON answer: what some proxies send for stream=true.
WholeReader = Callable[[dict[str, Any]], list[ProviderEvent]]
# Given a 4xx error before any event, returns a payload to try once more instead, or None.
Fallback = Callable[[ProviderError, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries before the first event: connect errors and RETRY_STATUSES, with exponential
    backoff and jitter, or the server's Retry-After."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff = min(self.base_delay_s * 2.0**attempt, self.max_delay_s)
        return backoff * (0.5 + random.random() / 2)


DEFAULT_RETRY = RetryPolicy()


def is_json(text: str) -> bool:
    """Whether `text` parses as JSON (tool call arguments cut off mid-way do not)."""
    try:
        jsontext.loads(text)
    except ValueError:
        return False
    return True


def output_limit_notice(events: list[ProviderEvent]) -> ProviderNotice:
    """Says the answer stopped at the output token limit, and inside which call, if any."""
    cut = [e.call.tool_name for e in events if isinstance(e, ToolCallReady) and e.cut_off]
    inside = f", inside a call of {cut[0]} (not run)" if cut else ""
    return ProviderNotice(f"the model stopped at its output token limit{inside}")


def rejects_parameter(message: str, names: tuple[str, ...]) -> bool:
    """Whether an error message says the server does not support one of the request
    parameters `names` — as servers word it ("Unrecognized request argument supplied: X",
    "Unsupported parameter: 'X'", "X is not supported", "does not support X", "Extra inputs
    are not permitted" at X) — and not merely mentions it (OpenAI's "Invalid parameter:
    messages with role 'tool' must be a response to …" is about the history, not the tools
    parameter)."""
    text = message.lower()
    for name in names:
        quoted = rf"['\"`]?{re.escape(name)}['\"`]?"
        patterns = (
            rf"\b(unrecognized|unknown|unsupported|unexpected|extra)\s+(request\s+)?"
            rf"(argument|parameter|field|property|key|input)s?(\s+supplied)?\s*:?\s*{quoted}(\W|$)",
            rf"(^|\W){quoted}\s+(is|are)\s+(not\s+(supported|permitted|allowed|recognized)|"
            rf"unsupported|unknown)",
            rf"(does not|doesn't|do not|don't|cannot|can't)\s+(support|accept)\s+(the\s+)?{quoted}"
            rf"(\W|$)",
            rf"(^|\W){quoted}\s*:\s*extra (inputs|fields) (are )?not permitted",
        )
        if any(re.search(p, text) for p in patterns):
            return True
    return False


def error_code(status: int, text: str) -> str:
    """Stable error code for an HTTP error of a provider."""
    lowered = text.lower()
    if status in (400, 413, 422) and any(m in lowered for m in _CONTEXT_MARKERS):
        return "context_too_long"
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status in (503, 529) or "overloaded" in lowered:
        return "overloaded"
    if 400 <= status < 500:
        return "bad_request"
    return "provider_error"


def error_text(body: bytes) -> str:
    """ "type: message" from an OpenAI- or Anthropic-style error body, or the raw body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:2000] or "(empty body)"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        message = error.get("message") or json.dumps(error)
        return f"{kind}: {message}" if kind else str(message)
    return str(error)


_RATE_HEADERS = (
    # OpenAI and servers of its API: x-ratelimit-{limit,remaining,reset}-{requests,tokens}
    re.compile(r"^x-ratelimit-(limit|remaining|reset)-(requests|tokens)$"),
    # Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{…}
    re.compile(r"^anthropic-ratelimit-(requests|tokens|input-tokens|output-tokens)-"
               r"(limit|remaining|reset)$"),
)  # fmt: skip


def rate_limits(headers: Mapping[str, str]) -> tuple[RateLimit, ...]:
    """The rate limits a response's headers state (none: empty)."""
    found: dict[str, dict[str, str]] = {}
    for key, value in headers.items():
        key = key.lower()
        if match := _RATE_HEADERS[0].match(key):
            field, name = match.group(1), match.group(2)
        elif match := _RATE_HEADERS[1].match(key):
            name, field = match.group(1).replace("-", "_"), match.group(2)
        else:
            continue
        found.setdefault(name, {})[field] = value.strip()
    order = ("requests", "tokens", "input_tokens", "output_tokens")
    return tuple(
        RateLimit(
            name,
            _integer(found[name].get("limit"), 0),
            _integer(found[name].get("remaining"), -1),
            found[name].get("reset", "")[:64],
        )
        for name in order
        if name in found
    )


def _integer(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _retry_after(response: Response) -> float | None:
    value = response.header("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def post_stream(
    *,
    client: HttpClient,
    url: str,
    headers: dict[str, str],
    payload: dict[str, Any],
    read: Reader,
    read_whole: WholeReader,
    retry: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    fallback: Fallback | None = None,
) -> AsyncGenerator[ProviderEvent, None]:
    """POSTs `payload` and yields what `read` makes of the streamed response, or what
    `read_whole` makes of a JSON one (some proxies answer stream=true that way). Failures
    before the first event are retried as `retry` says (each announced by a notice); after
    it, any failure raises ProviderError."""
    attempt = 0
    started = False  # an event went out: nothing can be retried any more
    while True:
        began = False  # the server answered 2xx and its body is being read
        try:
            async with client.request("POST", url, json=payload, headers=headers) as response:
                if response.status >= 400:
                    body = await response.read()
                    text = error_text(body)
                    raise ProviderError(
                        error_code(response.status, text),
                        f"{url} returned HTTP {response.status}: {text}",
                        status=response.status,
                        retry_after=_retry_after(response),
                    )
                began = True
                if limits := rate_limits(response.headers):
                    yield RateLimitReport(limits)
                content_type = response.header("content-type").lower()
                if "json" in content_type and "event-stream" not in content_type:
                    for event in read_whole(json_object(url, await response.read())):
                        started = True
                        yield event
                    return
                async for event in read(response.texts()):
                    started = True
                    yield event
                return
        except ProviderError as e:
            if not started and fallback is not None and 400 <= e.status < 500:
                replacement = fallback(e, payload)
                if replacement is not None:
                    payload = replacement
                    continue
            if started or e.status not in RETRY_STATUSES or attempt + 1 >= retry.attempts:
                raise
            error = e
        except TimedOut as e:
            error = ProviderError("network", f"{url} timed out {e}")
            if started or not e.connecting or attempt + 1 >= retry.attempts:
                raise error from None
        except TransportError as e:
            if began:
                error = ProviderError("network", f"{url}: connection lost mid-response: {e}")
            else:
                error = ProviderError("network", f"{url}: connection failed: {e}")
            if started or attempt + 1 >= retry.attempts:
                raise error from None
        delay = retry.delay(attempt, error.retry_after)
        attempt += 1
        yield ProviderNotice(
            f"{error.message}; retrying in {delay:.1f} s "
            f"(attempt {attempt + 1} of {retry.attempts})",
            retry=Retry(attempt + 1, retry.attempts, delay, error.code),
        )
        await sleep(delay)


def json_object(url: str, body: bytes | str, *, streamed: bool = False) -> dict[str, Any]:
    """A JSON object the server sent (a whole answer, or with `streamed` one event's data);
    ProviderError when it is not an object or reports an error."""
    sent, said = ("sent a line that is not JSON", "sent") if streamed else (
        "answered with JSON that does not parse", "answered"
    )  # fmt: skip
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("provider_error", f"{url} {sent}: {body[:200]!r}") from None
    if not isinstance(data, dict):
        raise ProviderError("provider_error", f"{url} {said} {body[:200]!r}")
    if "error" in data:
        raw = body.encode() if isinstance(body, str) else body
        raise ProviderError("provider_error", f"{url} reported an error: {error_text(raw)}")
    return data


MAX_MODEL_PAGES = 20


async def get_json(
    client: HttpClient, url: str, headers: dict[str, str], params: dict[str, str]
) -> dict[str, Any]:
    """GETs a JSON object (model lists) with a provider's headers (a JSON `accept` instead
    of the stream's); ProviderError with a stable code on failure."""
    headers = {**headers, "accept": "application/json"}
    try:
        async with client.request("GET", url, headers=headers, params=params.items()) as response:
            status, body = response.status, await response.read()
    except TimedOut:
        raise ProviderError("network", f"{url} timed out") from None
    except TransportError as e:
        raise ProviderError("network", f"{url}: connection failed: {e}") from None
    if status >= 400:
        text = error_text(body)
        raise ProviderError(
            error_code(status, text), f"{url} returned HTTP {status}: {text}", status=status
        )
    return json_object(url, body)


def positive(value: Any) -> int:
    """`value` as a positive int, 0 when it is not one (limits servers may state)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
