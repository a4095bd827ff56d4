"""Commands for a running turn: what they are, their encoding between replicas, delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import assert_never

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, InvalidArgument, KodaError
from kodad.domain.events import EventPayload, Notice
from kodad.domain.model import Decision, LoopAction, NoticeLevel, QueuedTurn
from kodad.engine import pending
from kodad.engine.inputs import TurnInput
from kodad.engine.live import Core
from kodad.engine.pending import ApprovalAnswer, LoopAnswer
from kodad.engine.queue import TurnQueue
from kodad.engine.turn import Turn
from kodad.store import codec, queues

# How long a command for a turn on another replica waits for that replica's answer.
COMMAND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Cancel:
    """Stop the turn; it ends CANCELLED with a valid history."""


@dataclass(frozen=True)
class Approve:
    """A decision on an approval request."""

    request_id: str
    answer: ApprovalAnswer


@dataclass(frozen=True)
class DecideLoop:
    """Go on (with more rounds) or stop at the loop cap."""

    answer: LoopAnswer


@dataclass(frozen=True)
class AnswerQuestion:
    """The user's answer to an ask_user question."""

    request_id: str
    text: str


@dataclass(frozen=True)
class Steer:
    """More input for the running turn (for `expected_turn_id` only, when set)."""

    input: TurnInput
    expected_turn_id: str = ""


TurnCommand = Cancel | Approve | DecideLoop | AnswerQuestion | Steer


def encode(command: TurnCommand) -> str:
    """A command as JSON, for the replica that runs the turn."""
    match command:
        case Cancel():
            return json.dumps({"cancel": True})
        case DecideLoop(answer):
            return json.dumps({"loop": [answer.action.value, answer.extra_iterations]})
        case Approve(request_id, answer):
            return json.dumps({"approval": [request_id, answer.decision.value, answer.feedback]})
        case AnswerQuestion(request_id, text):
            return json.dumps({"answer": [request_id, text]})
        case Steer(given, expected):
            return json.dumps({"steer": [queues.encode_queued(QueuedTurn("", given.text,
                                         given.images)), expected]})  # fmt: skip
        case _:
            assert_never(command)


def decode(body: str) -> TurnCommand:
    value = json.loads(body)
    if "loop" in value:
        action, extra = value["loop"]
        return DecideLoop(LoopAnswer(LoopAction(action), extra))
    if "approval" in value:
        request_id, decision, feedback = value["approval"]
        return Approve(request_id, ApprovalAnswer(Decision(decision), feedback))
    if "answer" in value:
        request_id, text = value["answer"]
        return AnswerQuestion(request_id, text)
    if value.get("cancel") is True:
        return Cancel()
    if "steer" in value:
        body, expected = value["steer"]
        queued = queues.decode_queued("", body, 0)
        return Steer(TurnInput(queued.text, queued.images), expected)
    raise InvalidArgument(f"not a turn command: {body[:200]}")


def _announcement(body: str) -> tuple[str, EventPayload] | None:
    """(turn id, payload) of an event another replica asks the log's writer to log."""
    value = json.loads(body)
    if "announce" not in value:
        return None
    turn_id, payload = value["announce"]
    return str(turn_id), codec.decode_payload(payload)


def deliver(turn: Turn, command: TurnCommand) -> Steer | None:
    """Applies a command to a turn running here; returns a steer that came too late for it
    (to be queued instead)."""
    match command:
        case Cancel():
            turn.cancel()
        case DecideLoop(answer):
            request = turn.pending.of_kind(pending.LOOP)
            if request is None:
                raise FailedPrecondition(f"turn {turn.id} is not waiting for a loop decision")
            turn.pending.answer(request.request_id, pending.LOOP, answer)
        case Approve(request_id, answer):
            turn.pending.answer(request_id, pending.APPROVAL, answer)
        case AnswerQuestion(request_id, text):
            turn.pending.answer(request_id, pending.QUESTION, text)
        case Steer(given, expected):
            if expected and expected != turn.id:
                raise _not_running(turn.session.id, expected, turn.id)
            if not turn.steer(given):
                return command
        case _:
            assert_never(command)
    return None


def _no_turn(session_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"session {session_id} has no running turn",
        reason=errors.NO_RUNNING_TURN,
        metadata={"session_id": session_id},
    )


def _not_running(session_id: str, turn_id: str, running: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"turn {turn_id} is not running on session {session_id} (running: {running})",
        reason=errors.TURN_NOT_RUNNING,
        metadata={"session_id": session_id, "turn_id": turn_id, "running_turn_id": running},
    )


class Commands:
    """Delivers commands to running turns, on whichever replica runs them."""

    def __init__(self, core: Core, queue: TurnQueue) -> None:
        self._core = core
        self._queue = queue

    async def submit(
        self, session_id: str, turn_id: str, command: TurnCommand, *, caller: Caller
    ) -> str:
        """Delivers a command to the session's running turn; returns the turn's id (for a
        steer that came too late: the id of the turn it was queued as)."""
        core = self._core
        live = await core.live.visible(session_id, caller)
        if isinstance(command, Steer):
            self._queue.check(command.input)
            turn_id = turn_id or command.expected_turn_id
            if live.turn is None and not await self._elsewhere(session_id, caller):
                if turn_id and live.last_turn_id and turn_id != live.last_turn_id:
                    raise _not_running(session_id, turn_id, "none")
                return await self._queue.enqueue(session_id, command.input, caller=caller,
                                                 front=True)  # fmt: skip
        if live.turn is not None or core.cluster is None:
            turn = await self.running_turn(session_id, turn_id, caller=caller)
            if (late := deliver(turn, command)) is not None:
                return await self._queue.enqueue(session_id, late.input, caller=caller,
                                                 front=True)  # fmt: skip
            return turn.id
        record = await core.live.record(session_id, caller)
        running = record.active_turn_id
        if not running:
            raise _no_turn(session_id)
        if turn_id and turn_id != running:
            raise _not_running(session_id, turn_id, running)
        code, message = await core.cluster.send_command(
            session_id, running, encode(command), COMMAND_TIMEOUT_S
        )
        if code:
            raise errors.from_code(code, message)
        return running

    async def _elsewhere(self, session_id: str, caller: Caller) -> bool:
        """Whether another replica runs a turn of the session."""
        if self._core.cluster is None:
            return False
        return bool((await self._core.live.record(session_id, caller)).active_turn_id)

    async def running_turn(self, session_id: str, turn_id: str, *, caller: Caller) -> Turn:
        if not session_id:
            raise InvalidArgument("session_id is required")
        live = await self._core.live.visible(session_id, caller)
        turn = live.turn
        if turn is None:
            raise _no_turn(session_id)
        if turn_id and turn.id != turn_id:
            raise _not_running(session_id, turn_id, turn.id)
        return turn

    async def from_stream(self, turn: Turn, command: TurnCommand | KodaError) -> None:
        """A command from the turn's own RunTurn stream: one that cannot apply becomes a
        warning notice instead of ending the stream."""
        try:
            if isinstance(command, KodaError):
                raise command
            if isinstance(command, Steer):
                self._queue.check(command.input)
            if (late := deliver(turn, command)) is not None:
                caller = Caller(tenant=turn.session.tenant)
                await self._queue.enqueue(turn.session.id, late.input, caller=caller, front=True)
        except KodaError as e:
            live = self._core.live.get(turn.session.id)
            if live is not None and live.turn is turn:
                live.log.emit(turn.id, Notice(NoticeLevel.WARNING, f"command ignored: {e}"))

    async def from_replicas(self, session_id: str) -> None:
        """Applies the commands other replicas queued for a turn running here."""
        cluster = self._core.cluster
        assert cluster is not None
        live = self._core.live.get(session_id)
        if live is None or (turn := live.turn) is None:
            return  # not running here: the owner takes them
        for command_id, turn_id, body in await cluster.take_commands(session_id):
            code, message = "", ""
            try:
                if turn_id != turn.id:
                    raise _not_running(session_id, turn_id, turn.id)
                if (announced := _announcement(body)) is not None:  # about a queued turn
                    live.log.emit(*announced)
                elif (late := deliver(turn, decode(body))) is not None:
                    caller = Caller(tenant=turn.session.tenant)
                    await self._queue.enqueue(session_id, late.input, caller=caller, front=True)
            except KodaError as e:
                code, message = e.code, str(e)
            await cluster.reply_command(command_id, code, message)
