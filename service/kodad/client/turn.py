"""A running turn of the Python client: its events, and the answers and commands it sends."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from kodad.client.errors import call as _call
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

T = TypeVar("T")
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]
# A handler returns the answer, or None to leave the question to another client.
ApprovalHandler = Callable[[epb.ApprovalRequested], "Awaitable[Answer | None] | Answer | None"]
LoopHandler = Callable[[epb.LoopCapReached], "Awaitable[LoopAnswer | None] | LoopAnswer | None"]
QuestionHandler = Callable[[epb.UserQuestion], "Awaitable[str | None] | str | None"]
# What an ask_user question gets when the turn has no question handler.
NO_ANSWER = (
    "Nobody can answer questions here: decide yourself, go on, and say in your answer what "
    "you assumed."
)


@dataclass(frozen=True)
class Answer:
    """The answer to an approval request."""

    decision: epb.Decision.ValueType = epb.DECISION_REJECT
    feedback: str = ""


@dataclass(frozen=True)
class LoopAnswer:
    """The answer to a loop-cap question."""

    action: epb.LoopAction.ValueType = epb.LOOP_ACTION_STOP
    extra_iterations: int = 0


async def _resolve(value: T | Awaitable[T]) -> T:
    return await value if inspect.isawaitable(value) else value


def output_of(ended: epb.TurnEnded) -> Any:
    """The answer of a turn started with an output schema, as a JSON value (None without)."""
    return json.loads(ended.output_json) if ended.output_json else None


class Turn:
    """A running turn: iterate it for events; `cancel()` stops the turn (not just the
    stream). Approval and loop questions go to the handlers given to `run_turn`."""

    def __init__(
        self,
        stub: pb_grpc.SessionServiceAsyncStub,
        start: epb.StartTurn,
        on_approval: ApprovalHandler | None,
        on_loop_cap: LoopHandler | None,
        metadata: tuple[tuple[str, str], ...] = (),
        on_question: QuestionHandler | None = None,
    ) -> None:
        # The typing stubs predate the write/read style of bidi calls (no request iterator).
        self._call: grpc.aio.StreamStreamCall[pb.RunTurnRequest, pb.RunTurnResponse] = stub.RunTurn(
            metadata=metadata
        )  # type: ignore[call-arg]
        self._start = start
        self._on_approval = on_approval
        self._on_loop_cap = on_loop_cap
        self._on_question = on_question
        self.turn_id = ""

    async def _send(self, command: epb.EngineCommand) -> None:
        await self._call.write(pb.RunTurnRequest(command=command))

    async def cancel(self) -> None:
        """Asks the service to cancel the turn; the events end with turn_ended CANCELLED."""
        await self._send(epb.EngineCommand(cancel=epb.Cancel()))

    async def approve(self, request_id: str, answer: Answer) -> None:
        await self._send(
            epb.EngineCommand(
                approval_decision=epb.ApprovalDecision(
                    request_id=request_id, decision=answer.decision, feedback=answer.feedback
                )
            )
        )

    async def decide_loop(self, answer: LoopAnswer) -> None:
        await self._send(
            epb.EngineCommand(
                loop_decision=epb.LoopDecision(
                    action=answer.action, extra_iterations=answer.extra_iterations
                )
            )
        )

    async def steer(self, text: str, images: Iterable[spb.Image] = ()) -> None:
        """Adds input the model sees at its next request (`user_input_added`); too late
        for the turn, it is queued as the session's next turn instead."""
        await self._send(epb.EngineCommand(steer=epb.Steer(text=text, images=list(images))))

    async def answer(self, request_id: str, text: str) -> None:
        """Answers an ask_user question (user_question) of the turn."""
        answer = epb.UserAnswer(request_id=request_id, text=text)
        await self._send(epb.EngineCommand(user_answer=answer))

    async def __aiter__(self) -> AsyncIterator[epb.EngineEvent]:
        await _call(self._send(epb.EngineCommand(start_turn=self._start)))
        while True:
            response = await _call(self._call.read())
            if response is _EOF:
                return
            assert isinstance(response, pb.RunTurnResponse)
            event = response.event
            self.turn_id = self.turn_id or event.turn_id
            yield event
            if event.HasField("approval_requested"):
                request = event.approval_requested
                handler = self._on_approval
                answer = await _resolve(handler(request)) if handler else Answer()
                if answer is not None:
                    await self.approve(request.request_id, answer)
            elif event.HasField("loop_cap_reached"):
                loop_handler = self._on_loop_cap
                question = event.loop_cap_reached
                loop = await _resolve(loop_handler(question)) if loop_handler else LoopAnswer()
                if loop is not None:
                    await self.decide_loop(loop)
            elif event.HasField("user_question"):
                asked = event.user_question
                handler_q = self._on_question
                text = await _resolve(handler_q(asked)) if handler_q else NO_ANSWER
                if text is not None:
                    await self.answer(asked.request_id, text)
            elif event.HasField("turn_ended"):
                return
