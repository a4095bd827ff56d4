"""Ending the turns a killed process or a lost replica left running, with valid logs."""

from __future__ import annotations

import logging
from collections import Counter

from kodad.domain.events import (
    Event,
    FileChanged,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
)
from kodad.domain.model import Message, Role, ToolResult, TurnEndReason
from kodad.engine.live import Core, LiveSession
from kodad.store.base import LeaseHeld, TurnRecord
from kodad.tools.shell import kill_orphans

log = logging.getLogger(__name__)


async def recover(core: Core) -> None:
    """Ends turns a killed process left running, keeping every history valid. With
    replicas: the turns whose owner stopped renewing its lease, each taken over first
    (one replica wins), ended FAILED with error_code owner_lost."""
    unfinished = await core.store.unfinished_turns()
    if unfinished and (killed := kill_orphans({t.turn_id for t in unfinished})):
        log.warning("killed %d command(s) left running by interrupted turns", killed)
    for turn in unfinished:
        record = await core.store.get_session(turn.session_id)
        if record is None:
            continue
        live = await core.live.load(turn.session_id)
        if live.turn is not None:
            continue
        token = 0
        if core.cluster is not None:
            try:
                token = await core.cluster.acquire_lease(turn.session_id, turn.turn_id)
            except LeaseHeld:
                continue  # its owner is back, or another replica took it over
            await live.log.catch_up(core.store)
        try:
            await end_interrupted(core, live, turn)
        finally:
            if core.cluster is not None:
                await core.cluster.release_lease(turn.session_id, token)


async def end_interrupted(core: Core, live: LiveSession, turn: TurnRecord) -> None:
    """Answers the turn's open tool calls and ends it FAILED: `interrupted` (the service
    stopped) or, with replicas, `owner_lost` (the replica running it stopped)."""
    code, why = "interrupted", "the service stopped"
    if core.cluster is not None:
        code, why = "owner_lost", "the replica running the turn stopped"
    text = f"{why} while the turn was running"
    messages = await core.store.list_messages(turn.session_id)
    started = await _complete_log(core, live, turn, messages)
    answered = {m.tool_result.call_id for m in messages if m.tool_result is not None}
    for message in messages:
        for call in message.tool_calls:
            if call.call_id not in answered:
                if call.call_id not in started:  # the crash came before it was announced
                    announce = ToolCallStarted(call.call_id, call.tool_name, call.arguments_json)
                    live.log.emit(turn.turn_id, announce)
                result = ToolResult(call.call_id, f"interrupted: {why}", True)
                await core.store.append_message(
                    turn.session_id, Message(Role.TOOL, turn.turn_id, tool_result=result)
                )
                live.log.emit(
                    turn.turn_id, ToolCallFinished(call.call_id, result.output, is_error=True)
                )
    # Stored with the turn's end (the row), in one transaction.
    live.log.emit(turn.turn_id, TurnEnded(TurnEndReason.FAILED, code, text))
    await live.log.flush()
    log.warning("turn %s of session %s was interrupted", turn.turn_id, turn.session_id)


async def _complete_log(
    core: Core, live: LiveSession, turn: TurnRecord, messages: list[Message]
) -> set[str]:
    """Appends the events a crash kept from the log although what they announce was
    stored: a tool_call_finished for each result in the history, a file_changed for each
    recorded change (the store writes those before their events). Returns the calls the
    log announced (tool_call_started)."""
    events = [e for e in await _events_of(core, turn.session_id) if e.turn_id == turn.turn_id]
    payloads = [e.payload for e in events if not e.subagent_session_id]
    if not any(isinstance(p, TurnStarted) for p in payloads):
        # The turn's row was stored before its turn_started (the turn began to run first).
        asked = next(
            (m for m in messages if m.turn_id == turn.turn_id and m.role is Role.USER), None
        )
        text, images = (asked.text, len(asked.images)) if asked else ("", 0)
        live.log.emit(turn.turn_id, TurnStarted(text, images))
    _finish_relayed(live, turn, events)
    started = {p.call_id for p in payloads if isinstance(p, ToolCallStarted)}
    finished = {p.call_id for p in payloads if isinstance(p, ToolCallFinished)}
    for m in messages:
        result = m.tool_result
        if result is None or result.call_id not in started or result.call_id in finished:
            continue
        live.log.emit(
            turn.turn_id,
            ToolCallFinished(result.call_id, result.output, result.is_error, result.truncated),
        )
    announced = Counter((p.path, p.change) for p in payloads if isinstance(p, FileChanged))
    changes = await core.store.list_file_changes(
        turn.session_id, turn_id=turn.turn_id, after=0, limit=100_000
    )
    for _, change in changes:
        if announced[(change.path, change.change)] > 0:
            announced[(change.path, change.change)] -= 1
        else:
            live.log.emit(turn.turn_id, FileChanged(change.path, change.change))
    return started


def _finish_relayed(live: LiveSession, turn: TurnRecord, events: list[Event]) -> None:
    """Ends the sub-agents' calls relayed into the turn's log whose end was not relayed
    (the sub-agent's own log is recovered with its session)."""
    open_calls: dict[tuple[str, str], Event] = {}
    for e in events:
        if not e.subagent_session_id:
            continue
        key = (e.subagent_session_id, getattr(e.payload, "call_id", ""))
        if isinstance(e.payload, ToolCallStarted):
            open_calls[key] = e
        elif isinstance(e.payload, ToolCallFinished):
            open_calls.pop(key, None)
    for (child, call_id), e in open_calls.items():
        live.log.emit(
            turn.turn_id,
            ToolCallFinished(call_id, "interrupted: the sub-agent's turn stopped", True),
            subagent_session_id=child,
            parent_call_id=e.parent_call_id,
        )


async def _events_of(core: Core, session_id: str) -> list[Event]:
    """Every stored event of a session, in order (for recovery only)."""
    events: list[Event] = []
    while page := await core.store.list_events(
        session_id, after_seq=events[-1].seq if events else 0, limit=1000
    ):
        events += page
    return events
