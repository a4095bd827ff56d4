"""Sessions' queues of turns: inputs that wait for the running turn to end (WHEN_BUSY_ENQUEUE,
INTERRUPT, a steer too late for its turn), stored, run in order, one at a time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, KodaError, NotFound, TurnAlreadyRunning
from kodad.domain.events import Event, EventPayload, QueuedTurnRemoved, TurnEnded, TurnQueued
from kodad.domain.ids import new_id
from kodad.domain.model import DisconnectPolicy, QueuedTurn, WhenBusy, now_us
from kodad.engine import outside
from kodad.engine.inputs import TurnInput
from kodad.engine.launch import Launcher
from kodad.engine.live import Core
from kodad.engine.turn import Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Queued:
    """An input queued as the turn `turn_id`; its events come after `after_seq`."""

    turn_id: str
    after_seq: int


Started = Turn | Queued


class TurnQueue:
    def __init__(self, core: Core, launcher: Launcher) -> None:
        self._core = core
        self._launcher = launcher

    def check(self, given: TurnInput) -> None:
        """INVALID_ARGUMENT or RESOURCE_EXHAUSTED for an input no turn may take."""
        self._launcher.check_input(given)

    async def start(self, session_id: str, given: TurnInput, *, caller: Caller) -> Started:
        """Starts `given` as its `when_busy` says: a Turn that runs it (or, for STEER, the
        running turn that took it), or the id of the turn it was queued as."""
        core = self._core
        live = await core.live.visible(session_id, caller)
        policy = given.when_busy
        if policy is WhenBusy.STEER and live.turn is not None and live.turn.steer(given):
            return live.turn
        if policy in (WhenBusy.REJECT, WhenBusy.STEER):
            return await self._launcher.start_turn(session_id, given, caller=caller)
        if live.turn is None and not await core.store.queued_turns(session_id):
            try:
                return await self._launcher.start_turn(session_id, given, caller=caller)
            except TurnAlreadyRunning:
                pass  # a turn runs (on another replica, or started in between): queue
        live = await core.live.load(session_id)
        after_seq = live.log.assigned_seq
        front = policy is WhenBusy.INTERRUPT
        turn_id = await self.enqueue(session_id, given, caller=caller, front=front)
        if front and live.turn is not None:
            live.turn.cancel()
        return Queued(turn_id, after_seq)

    async def enqueue(
        self, session_id: str, given: TurnInput, *, caller: Caller, front: bool = False
    ) -> str:
        """Queues `given` as a turn of its own (at the front: before the turns already
        queued) and returns its id; it starts at once when the session is idle."""
        core = self._core
        self._launcher.check_input(given)
        record = await core.live.record(session_id, caller)
        caller.check_workspace(record.workspace)
        roots = tuple(str(r) for r in caller.workspace_roots)
        queued = QueuedTurn(
            new_id("t"), given.text, given.images, now_us(), roots, given.output_schema
        )
        await self.add(session_id, queued, front=front)
        return queued.turn_id

    async def add(self, session_id: str, queued: QueuedTurn, *, front: bool) -> None:
        """Stores `queued` in the queue, announces it and starts it if nothing runs."""
        core = self._core
        position = await core.store.enqueue_turn(session_id, queued, front=front)
        announced = TurnQueued(queued.text, len(queued.images), position)
        await self.publish(session_id, queued.turn_id, announced)
        if (live := core.live.get(session_id)) is not None and live.turn is None:
            core.spawn(self.start_next(session_id))

    async def publish(self, session_id: str, turn_id: str, payload: EventPayload) -> None:
        await outside.publish(self._core, session_id, turn_id, payload)

    async def remove(self, session_id: str, turn_id: str, *, caller: Caller, why: str) -> None:
        """Takes a queued turn off the queue (NOT_FOUND when it is not queued)."""
        core = self._core
        await core.live.record(session_id, caller)
        if not await core.store.remove_queued_turn(session_id, turn_id):
            raise NotFound(f"turn {turn_id} is not queued on session {session_id}")
        await self.publish(session_id, turn_id, QueuedTurnRemoved(why))

    async def clear(self, session_id: str) -> None:
        for turn_id in await self._core.store.clear_queue(session_id):
            await self.publish(session_id, turn_id, QueuedTurnRemoved("cancelled"))

    async def after_turn(self, turn: Turn) -> None:
        """Once a session's turn is over: queues the steers it could not take (first, in
        order), then starts the next queued turn."""
        session_id = turn.session.id
        late = turn.late_steers()
        for given in reversed(late):  # each at the front: they end up in their order
            queued = QueuedTurn(new_id("t"), given.text, given.images, now_us())
            await self.add(session_id, queued, front=True)
        await self.start_next(session_id)

    async def start_next(self, session_id: str) -> None:
        """Starts the session's next queued turn, unless a turn runs (its end starts it)."""
        core = self._core
        live = await core.live.load(session_id)
        if live.turn is not None:
            return
        record = await core.store.get_session(session_id)
        if record is None or record.active_turn_id:  # running elsewhere: its end starts it
            return
        if (queued := await core.store.take_queued_turn(session_id)) is None:
            return
        roots = tuple(Path(r) for r in queued.workspace_roots)
        caller = Caller(tenant=record.tenant, workspace_roots=roots)
        # It keeps running when the stream that queued it is gone (that stream cancels it).
        given = TurnInput(
            queued.text, queued.images, DisconnectPolicy.CONTINUE,
            output_schema=queued.output_schema,
        )  # fmt: skip
        try:
            await self._launcher.start_turn(
                session_id, given, caller=caller, turn_id=queued.turn_id
            )
        except FailedPrecondition as e:
            # Busy after all (another replica, or a start in between): back to the front;
            # the turn that runs starts it when it ends.
            log.info("queued turn %s waits: %s", queued.turn_id, e)
            await core.store.enqueue_turn(session_id, queued, front=True)
        except KodaError as e:
            log.warning("queued turn %s could not start: %s", queued.turn_id, e)
            await self.publish(session_id, queued.turn_id, QueuedTurnRemoved("failed", str(e)))
            core.spawn(self.start_next(session_id))

    async def resume(self) -> None:
        """At start-up: the queues that wait on no running turn go on."""
        for session_id in await self._core.store.queued_sessions():
            live = await self._core.live.load(session_id)
            record = await self._core.store.get_session(session_id)
            if live.turn is None and record is not None and not record.active_turn_id:
                await self.start_next(session_id)

    async def follow(self, session_id: str, turn_id: str, after_seq: int) -> AsyncIterator[Event]:
        """The events of the queued turn `turn_id` from its turn_queued (after `after_seq`)
        to its turn_ended, or its queued_turn_removed."""
        core = self._core
        live = await core.live.load(session_id)
        async for event in live.log.follow(core.store, after_seq):
            if event.turn_id != turn_id:
                continue
            yield event
            if isinstance(event.payload, TurnEnded | QueuedTurnRemoved):
                return
