"""Changes to a session outside its turns (rewinds, events about its queue): with replicas only
the holder of the session's lease writes its log, so the change takes the lease, or goes to
the replica running a turn there."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator

from kodad.domain.errors import TurnAlreadyRunning
from kodad.domain.events import EventPayload
from kodad.engine.live import Core, LiveSession
from kodad.store import codec
from kodad.store.base import LeaseHeld

log = logging.getLogger(__name__)
# How long the replica running a session's turn has to log an event it is sent.
ANNOUNCE_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def hold(core: Core, session_id: str, holder_id: str) -> AsyncIterator[LiveSession]:
    """The session, held: no turn runs or starts (TURN_ALREADY_RUNNING when one runs), and
    with replicas this one holds its lease (its log is caught up). Events emitted meanwhile
    are stored before it is let go."""
    live = await core.live.load(session_id)
    if live.turn is not None:
        raise TurnAlreadyRunning(session_id, live.turn.id)
    token = 0
    if core.cluster is not None:
        try:
            token = await core.cluster.acquire_lease(session_id, holder_id)
        except LeaseHeld as e:
            raise TurnAlreadyRunning(session_id, e.turn_id, str(e)) from None
        await live.log.catch_up(core.store)
    live.held = True
    try:
        yield live
    finally:
        live.held = False
        try:
            await live.log.flush()
        finally:
            if core.cluster is not None:
                await core.cluster.release_lease(session_id, token)


async def publish(core: Core, session_id: str, turn_id: str, payload: EventPayload) -> None:
    """Emits an event about the session outside its turns (e.g. about a queued turn): into
    the log here when a turn runs here or there are no replicas; else sent to the replica
    running a turn, or written under the lease for as long as the write takes."""
    live = await core.live.load(session_id)
    cluster = core.cluster
    for _ in range(3):
        if live.turn is not None or cluster is None:
            live.log.emit(turn_id, payload)
            return
        record = await core.store.get_session(session_id)
        if record is not None and record.active_turn_id:
            body = json.dumps({"announce": [turn_id, codec.encode_payload(payload)]})
            code, _ = await cluster.send_command(
                session_id, record.active_turn_id, body, ANNOUNCE_TIMEOUT_S
            )
            if not code:
                return
            continue  # that turn ended meanwhile
        try:
            async with hold(core, session_id, turn_id) as held:
                held.log.emit(turn_id, payload)
            return
        except TurnAlreadyRunning:
            continue  # a turn started meanwhile
    log.warning("could not log %s about %s", payload.kind, turn_id)
