"""Watching a session: its stored events, then live ones, without gaps or repeats."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import InvalidArgument, OutOfRange
from kodad.domain.events import Event
from kodad.engine.live import Core


async def watch(
    core: Core, session_id: str, after_seq: int, caller: Caller
) -> AsyncIterator[Event]:
    """Stored events after `after_seq`, then live ones; first the open questions asked
    before `after_seq`, so a late client can answer them."""
    if after_seq < 0:
        raise InvalidArgument(f"after_seq must not be negative, got {after_seq}")
    if not session_id:
        raise InvalidArgument("session_id is required")
    live = await core.live.visible(session_id, caller)
    if core.cluster is not None and live.turn is None:
        await live.log.catch_up(core.store)  # what other replicas stored since
    if after_seq > live.log.assigned_seq:
        raise OutOfRange(
            f"after_seq {after_seq} is beyond the last event of session {session_id} "
            f"({live.log.assigned_seq})"
        )
    limit = core.settings.limits.watchers_per_session
    if limit and live.watchers >= limit:
        raise errors.limit_reached(
            "watchers_per_session",
            limit,
            f"session {session_id} has {limit} watchers, the watchers_per_session limit",
        )
    live.watchers += 1
    try:
        asked_before: list[Event] = []
        if live.turn is not None:
            asked_before = live.turn.pending.events(session_id)
        elif core.cluster is not None:  # a turn on another replica: from the log
            record = await core.live.record(session_id, caller)
            if record.active_turn_id:
                asked_before = await core.cluster.open_requests(session_id, record.active_turn_id)
        for asked in asked_before:
            if asked.seq <= after_seq:
                yield asked
        async for event in live.log.follow(core.store, after_seq):
            yield event
    finally:
        live.watchers -= 1
