"""Summarising the older part of a session's history so it fits the context window."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kodad.domain.events import EventPayload, Notice, UsageReported
from kodad.domain.model import Message, NoticeLevel, Role, SessionRecord, Usage
from kodad.engine import compaction, rounds
from kodad.providers import LlmProvider, ProviderRequest


async def summarise(
    *,
    session: SessionRecord,
    turn_id: str,
    provider: LlmProvider,
    messages: list[Message],
    prior_rounds: int,
    window: int,
    keep_share: float,
    emit: Callable[[EventPayload], object],
    drain: Callable[[], Awaitable[None]],
    explicit: bool,
) -> tuple[Message | None, Usage | None]:
    """The summary message of `messages` before the cut that keeps `keep_share` of the
    window verbatim (None, with a warning, when nothing can be cut), and the call's usage.
    `explicit`: asked for by CompactSession, not by a full window."""
    cut = compaction.plan_cut(messages, window, keep_share)
    if cut is None:
        text = (
            "there is nothing before the last turn to compact"
            if explicit
            else f"the history is near the context window of {window} tokens and the "
            "current turn cannot be compacted further"
        )
        emit(Notice(NoticeLevel.WARNING, text))
        return None, None
    older = [m for m in messages if m.index < cut or m.role is Role.SUMMARY]
    request = ProviderRequest(
        model=session.provider.model,
        system_prompt=compaction.SUMMARY_PROMPT,
        messages=[Message(Role.USER, turn_id, text=compaction.transcript(older))],
        max_output_tokens=session.provider.max_output_tokens,
        prior_rounds=prior_rounds,
        purpose="summary",
    )
    result = rounds.Round()
    await rounds.stream(provider, request, result, emit, drain, show_text=False)
    if result.usage is not None:
        emit(UsageReported(result.usage))
    through = cut - 1
    summary = Message(
        Role.SUMMARY,
        turn_id,
        text=compaction.summary_text("".join(result.text), through),
        summarized_through=through,
    )
    return summary, result.usage


def compacted_notice(through: int, window: int) -> Notice:
    return Notice(
        NoticeLevel.INFO,
        f"compacted the history: messages 1-{through} are summarised to fit the "
        f"context window of {window} tokens (they stay stored)",
    )
