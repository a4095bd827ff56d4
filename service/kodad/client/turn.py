"""A running turn of the Python client: its events, and the answers and commands it sends."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from kodad.client.errors import KodadError
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


@dataclass(frozen=True)
class Handlers:
    """Who answers a turn's questions: approvals (default: reject), the loop cap (default:
    stop) and ask_user (default: NO_ANSWER)."""

    on_approval: ApprovalHandler | None = None
    on_loop_cap: LoopHandler | None = None
    on_question: QuestionHandler | None = None


def approval_command(request_id: str, answer: Answer) -> epb.EngineCommand:
    decision = epb.ApprovalDecision(
        request_id=request_id, decision=answer.decision, feedback=answer.feedback
    )
    return epb.EngineCommand(approval_decision=decision)


def loop_command(answer: LoopAnswer) -> epb.EngineCommand:
    decision = epb.LoopDecision(action=answer.action, extra_iterations=answer.extra_iterations)
    return epb.EngineCommand(loop_decision=decision)


def answer_command(request_id: str, text: str) -> epb.EngineCommand:
    return epb.EngineCommand(user_answer=epb.UserAnswer(request_id=request_id, text=text))


async def respond(
    event: epb.EngineEvent,
    handlers: Handlers,
    send: Callable[[epb.EngineCommand], Awaitable[object]],
) -> None:
    """Answers the question `event` asks, if it asks one, with its handler's answer (a
    handler returning None leaves it to another client). The same for a turn this client
    runs and for one it follows with WatchSession (answers sent with SubmitCommand)."""
    if event.HasField("approval_requested"):
        request = event.approval_requested
        handler = handlers.on_approval
        answer = await _resolve(handler(request)) if handler else Answer()
        if answer is not None:
            await send(approval_command(request.request_id, answer))
    elif event.HasField("loop_cap_reached"):
        loop_handler = handlers.on_loop_cap
        question = event.loop_cap_reached
        loop = await _resolve(loop_handler(question)) if loop_handler else LoopAnswer()
        if loop is not None:
            await send(loop_command(loop))
    elif event.HasField("user_question"):
        asked = event.user_question
        handler_q = handlers.on_question
        text = await _resolve(handler_q(asked)) if handler_q else NO_ANSWER
        if text is not None:
            await send(answer_command(asked.request_id, text))


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
        previous: Turn | None = None,
    ) -> None:
        # The typing stubs predate the write/read style of bidi calls (no request iterator).
        self._call: grpc.aio.StreamStreamCall[pb.RunTurnRequest, pb.RunTurnResponse] = stub.RunTurn(
            metadata=metadata
        )  # type: ignore[call-arg]
        self._start = start
        self._handlers = Handlers(on_approval, on_loop_cap, on_question)
        self._previous = previous  # this client's last turn of the session: ended first
        self._started = self._ended = False
        self._closing = asyncio.Lock()
        self._iteration: weakref.ref[AsyncIterator[epb.EngineEvent]] | None = None
        self.turn_id = ""

    @property
    def done(self) -> bool:
        """The turn ended (or was closed): nothing more will come."""
        return self._ended

    async def close(self) -> None:
        """Ends the turn if it still runs: cancels it and waits (at most 10 s) for its
        turn_ended, then closes the stream. Leaving `async for` early does this, and
        the next run_turn of the same session on this client waits for it, so that turn can
        start. A turn still iterated elsewhere is left alone (TURN_ALREADY_RUNNING)."""
        async with self._closing:
            if self._ended:
                return
            self._ended = True
            if self._started:
                with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    await self.cancel()
                    async with asyncio.timeout(10):
                        while (response := await self._call.read()) is not _EOF:
                            assert isinstance(response, pb.RunTurnResponse)
                            if response.event.HasField("turn_ended"):
                                break
            self._call.cancel()

    async def send(self, command: epb.EngineCommand) -> None:
        """Sends any command to the turn (cancel, a decision, an answer, a steer)."""
        await self._call.write(pb.RunTurnRequest(command=command))

    async def cancel(self) -> None:
        """Asks the service to cancel the turn; the events end with turn_ended CANCELLED."""
        await self.send(epb.EngineCommand(cancel=epb.Cancel()))

    async def approve(self, request_id: str, answer: Answer) -> None:
        await self.send(approval_command(request_id, answer))

    async def decide_loop(self, answer: LoopAnswer) -> None:
        await self.send(loop_command(answer))

    async def steer(self, text: str, images: Iterable[spb.Image] = ()) -> None:
        """Adds input the model sees at its next request (`user_input_added`); too late
        for the turn, it is queued as the session's next turn instead."""
        await self.send(epb.EngineCommand(steer=epb.Steer(text=text, images=list(images))))

    async def answer(self, request_id: str, text: str) -> None:
        """Answers an ask_user question (user_question) of the turn."""
        await self.send(answer_command(request_id, text))

    def __aiter__(self) -> AsyncIterator[epb.EngineEvent]:
        events = self._events()
        self._iteration = weakref.ref(events)
        return events

    def _abandoned(self) -> bool:
        """Its iteration was left and collected (its close may be pending on the loop)."""
        return self._iteration is not None and self._iteration() is None and not self._ended

    async def _events(self) -> AsyncIterator[epb.EngineEvent]:
        if self._previous is not None:
            previous, self._previous = self._previous, None
            if previous._abandoned():  # left early: it ends before this one starts
                await previous.close()
        self._started = True
        try:
            await _call(self.send(epb.EngineCommand(start_turn=self._start)))
            while True:
                response = await _call(self._call.read())
                if response is _EOF:
                    self._ended = True
                    return
                assert isinstance(response, pb.RunTurnResponse)
                event = response.event
                self.turn_id = self.turn_id or event.turn_id
                if event.HasField("turn_ended"):
                    self._ended = True
                yield event
                if self._ended:
                    return
                await respond(event, self._handlers, self.send)
        except KodadError:
            self._ended = True
            raise
        finally:
            if not self._ended:  # left early (break, an exception, cancellation)
                await self.close()
