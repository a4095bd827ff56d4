"""Commands for a running turn: what they are, their encoding between replicas, delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import assert_never

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, InvalidArgument, KodaError
from kodad.domain.events import Notice
from kodad.domain.model import Decision, LoopAction, NoticeLevel
from kodad.engine import pending
from kodad.engine.live import Core
from kodad.engine.pending import ApprovalAnswer, LoopAnswer
from kodad.engine.turn import Turn

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


TurnCommand = Cancel | Approve | DecideLoop | AnswerQuestion


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
    raise InvalidArgument(f"not a turn command: {body[:200]}")


def deliver(turn: Turn, command: TurnCommand) -> None:
    """Applies a command to a turn running here."""
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
        case _:
            assert_never(command)


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

    def __init__(self, core: Core) -> None:
        self._core = core

    async def submit(
        self, session_id: str, turn_id: str, command: TurnCommand, *, caller: Caller
    ) -> str:
        """Delivers a command to the session's running turn; returns the turn's id."""
        core = self._core
        live = await core.live.visible(session_id, caller)
        if live.turn is not None or core.cluster is None:
            turn = await self.running_turn(session_id, turn_id, caller=caller)
            deliver(turn, command)
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

    def from_stream(self, turn: Turn, command: TurnCommand | KodaError) -> None:
        """A command from the turn's own RunTurn stream: one that cannot apply becomes a
        warning notice instead of ending the stream."""
        try:
            if isinstance(command, KodaError):
                raise command
            deliver(turn, command)
        except KodaError as e:
            live = self._core.live.get(turn.session.id)
            if live is not None and live.turn is turn:
                live.log.emit(turn.id, Notice(NoticeLevel.WARNING, f"command ignored: {e}"))

    async def from_replicas(self, session_id: str) -> None:
        """Applies the commands other replicas queued for a turn running here."""
        cluster = self._core.cluster
        assert cluster is not None
        live = self._core.live.get(session_id)
        turn = live.turn if live is not None else None
        if turn is None:
            return  # not running here: the owner takes them
        for command_id, turn_id, body in await cluster.take_commands(session_id):
            code, message = "", ""
            try:
                if turn_id != turn.id:
                    raise _not_running(session_id, turn_id, turn.id)
                deliver(turn, decode(body))
            except KodaError as e:
                code, message = e.code, str(e)
            await cluster.reply_command(command_id, code, message)
