"""One call to the provider, streamed into a turn's events."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from kodad import metrics
from kodad.domain.events import EventPayload, Notice, RateLimits, TextDelta, ThinkingDelta
from kodad.domain.model import NoticeLevel, ToolCall, Usage
from kodad.providers import (
    LlmProvider,
    ProviderError,
    ProviderNotice,
    ProviderRequest,
    RateLimitReport,
    TextChunk,
    ThinkingChunk,
    ThinkingSignature,
    ToolCallReady,
    UsageReport,
)


@dataclass
class Round:
    """What one provider call produced, as far as it got."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    # Calls the output token limit ended inside: answered with an error, never run.
    cut_off: set[str] = field(default_factory=set)
    usage: Usage | None = None


async def stream(
    provider: LlmProvider,
    request: ProviderRequest,
    into: Round,
    emit: Callable[[EventPayload], object],
    drain: Callable[[], Awaitable[None]],
    *,
    show_text: bool = True,
) -> None:
    """Streams one provider call into `into`, emitting its deltas (with `show_text`),
    notices and rate limits; `drain` is awaited after each delta (backpressure)."""
    async with contextlib.aclosing(provider.stream(request)) as events:
        async for event in events:
            if isinstance(event, TextChunk):
                if event.text:
                    into.text.append(event.text)
                    if show_text:
                        emit(TextDelta(event.text))
                        await drain()
            elif isinstance(event, ThinkingChunk):
                if event.text:
                    into.thinking.append(event.text)
                    if show_text:
                        emit(ThinkingDelta(event.text))
                        await drain()
            elif isinstance(event, ThinkingSignature):
                into.signature += event.signature
            elif isinstance(event, ToolCallReady):
                into.calls.append(event.call)
                if event.cut_off:
                    into.cut_off.add(event.call.call_id)
            elif isinstance(event, UsageReport):
                into.usage = event.usage
            elif isinstance(event, ProviderNotice):
                emit(notice(event))
            elif isinstance(event, RateLimitReport):
                emit(RateLimits(event.limits))


def notice(event: ProviderNotice) -> Notice:
    level = NoticeLevel.WARNING if event.warning else NoticeLevel.INFO
    retry = event.retry
    if retry is None:
        return Notice(level, event.text)
    delay_ms = round(retry.delay_s * 1000)
    return Notice(level, event.text, retry.attempt, retry.attempts, delay_ms, retry.reason)


@contextlib.contextmanager
def count_errors(kind: str) -> Iterator[None]:
    try:
        yield
    except ProviderError as e:
        metrics.PROVIDER_ERRORS.labels(kind, e.code).inc()
        raise
