"""One ACP prompt as one kodad turn: its events become session updates, its approvals,
loop-cap questions and ask_user questions become permission requests (or a form), and
session/cancel becomes CancelTurn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from acp import RequestError
from acp.schema import (
    AcceptElicitationResponse,
    AllowedOutcome,
    ClientCapabilities,
    ElicitationFormSessionMode,
    ElicitationSchema,
    ElicitationStringPropertySchema,
    PermissionOption,
    PromptResponse,
    RequestPermissionResponse,
    StopReason,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    Usage,
)

from kodad.acp.prompt import TurnInput
from kodad.acp.updates import Translator, Update, tool_kind
from kodad.client import NO_ANSWER, Answer, Client, KodadError, LoopAnswer, Turn
from kodad.gen.koda.v1 import engine_pb2 as epb

T = TypeVar("T")
_STOP_REASONS: dict[int, StopReason] = {
    epb.TURN_END_REASON_COMPLETED: "end_turn",
    epb.TURN_END_REASON_CANCELLED: "cancelled",
    epb.TURN_END_REASON_STOPPED_AT_LOOP_CAP: "max_turn_requests",
    epb.TURN_END_REASON_BUDGET_EXHAUSTED: "max_tokens",
}
# Permission options of an approval request: their ids are the decisions they send.
APPROVAL_OPTIONS = (
    PermissionOption(option_id="allow_once", name="Allow", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Always allow", kind="allow_always"),
    PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
    PermissionOption(option_id="reject_always", name="Always reject", kind="reject_always"),
)
_DECISIONS = {
    "allow_once": epb.DECISION_APPROVE,
    "allow_always": epb.DECISION_APPROVE_ALWAYS,
    "reject_once": epb.DECISION_REJECT,
    "reject_always": epb.DECISION_REJECT_ALWAYS,
}
DECIDE_YOURSELF = "decide"  # the option of a question that leaves the answer to the model


class Editor(Protocol):
    """The ACP client side, as the adapter calls it (acp.Client's methods in use)."""

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None: ...

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse: ...  # fmt: skip

    async def create_elicitation(self, message: str, mode: Any, **kwargs: Any) -> Any: ...


def request_error(e: KodadError) -> RequestError:
    """A failed RPC as a JSON-RPC error: kodad's status, reason and message in `data`."""
    data = {"grpcCode": e.code.name, "reason": e.reason, "details": e.message}
    if e.code.name == "NOT_FOUND":
        return RequestError(-32002, f"Resource not found: {e.message}", data)
    if e.code.name == "INVALID_ARGUMENT":
        return RequestError(-32602, f"Invalid params: {e.message}", data)
    if e.code.name == "UNAUTHENTICATED":
        return RequestError(-32000, f"Authentication required: {e.message}", data)
    return RequestError(-32603, f"{e.code.name}: {e.message}", data)


class PromptRun:
    """Runs one prompt. `cancel()` (session/cancel) ends it with stopReason cancelled."""

    def __init__(
        self,
        kodad: Client,
        editor: Editor,
        session_id: str,
        workspace: str,
        capabilities: ClientCapabilities | None,
    ) -> None:
        self._kodad = kodad
        self._editor = editor
        self.session_id = session_id
        self._translator = Translator(workspace)
        self._capabilities = capabilities
        self._cancelled = asyncio.Event()
        self._asking: dict[str, asyncio.Task[None]] = {}  # request id -> its question
        self._turn: Turn | None = None

    async def cancel(self) -> None:
        """Stops asking, then cancels the kodad turn (nothing to cancel is not an error)."""
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        for task in self._asking.values():
            task.cancel()
        with contextlib.suppress(KodadError):
            await self._kodad.cancel_turn(self.session_id)

    async def run(self, given: TurnInput) -> PromptResponse:
        turn = self._kodad.run_turn(
            self.session_id, given.text, images=given.images,
            # Answered here, from the events: a handler returning None leaves them to us.
            on_approval=_leave, on_loop_cap=_leave, on_question=_leave,
        )  # fmt: skip
        self._turn = turn
        ended: epb.TurnEnded | None = None
        try:
            async for event in turn:
                for update in self._translator.feed(event):
                    await self._send(update)
                ended = await self._handle(turn, event) or ended
        except KodadError as e:
            raise request_error(e) from None
        finally:
            for task in self._asking.values():
                task.cancel()
        if self._cancelled.is_set():
            return PromptResponse(stop_reason="cancelled", usage=_usage(ended))
        if ended is None:
            raise RequestError.internal_error({"details": "the turn's stream ended early"})
        if ended.reason == epb.TURN_END_REASON_FAILED:
            raise RequestError(
                -32603,
                ended.error_message or ended.error_code,
                {"errorCode": ended.error_code, "turnId": turn.turn_id},
            )
        return PromptResponse(stop_reason=_STOP_REASONS[ended.reason], usage=_usage(ended))

    async def _send(self, update: Update | ToolCallStart | ToolCallProgress) -> None:
        await self._editor.session_update(self.session_id, update)

    async def _handle(self, turn: Turn, event: epb.EngineEvent) -> epb.TurnEnded | None:
        which = event.WhichOneof("payload")
        if which == "turn_ended":
            return event.turn_ended
        if which == "approval_requested":
            asked = event.approval_requested
            self._ask(asked.request_id, self._approve(turn, event, asked))
        elif which == "user_question":
            question = event.user_question
            self._ask(question.request_id, self._answer(turn, event, question))
        elif which == "loop_cap_reached":
            self._ask(f"loop-{event.seq}", self._decide_loop(turn, event))
        elif which == "approval_resolved":  # answered elsewhere: stop asking here
            task = self._asking.pop(event.approval_resolved.request_id, None)
            if task is not None:
                task.cancel()
        return None

    def _ask(self, key: str, work: Awaitable[None]) -> None:
        async def asking() -> None:
            try:
                await work
            except (KodadError, ConnectionError):
                pass  # answered by another client, or the turn is gone: nothing to send
            finally:
                self._asking.pop(key, None)

        if not self._cancelled.is_set():
            self._asking[key] = asyncio.create_task(asking())
        elif asyncio.iscoroutine(work):
            work.close()

    async def _permission(
        self, tool_call: ToolCallUpdate, options: list[PermissionOption]
    ) -> str | None:
        """The chosen option id; None when the client cancelled (the prompt is cancelled)."""
        response = await self._editor.request_permission(self.session_id, tool_call, options)
        if isinstance(response.outcome, AllowedOutcome):
            return response.outcome.option_id
        await self.cancel()
        return None

    async def _approve(
        self, turn: Turn, event: epb.EngineEvent, asked: epb.ApprovalRequested
    ) -> None:
        options = list(APPROVAL_OPTIONS)
        if asked.risk == epb.APPROVAL_RISK_HIGH:  # no rule ever allows it: do not offer one
            options = [o for o in options if o.kind != "allow_always"]
        call = ToolCallUpdate(
            tool_call_id=self._translator.tool_call_id(event, asked.call_id),
            title=asked.summary,
            kind=tool_kind(asked.tool_name),
            status="pending",
            field_meta={
                "kodad": {"risk": epb.ApprovalRisk.Name(asked.risk), "preview": asked.preview}
            },
        )
        chosen = await self._permission(call, options)
        if chosen in _DECISIONS:
            await turn.approve(asked.request_id, Answer(_DECISIONS[chosen]))

    async def _answer(self, turn: Turn, event: epb.EngineEvent, question: epb.UserQuestion) -> None:
        tool_call_id = self._translator.tool_call_id(event, question.call_id)
        if not question.choices and self._forms():
            mode = ElicitationFormSessionMode(
                session_id=self.session_id,
                tool_call_id=tool_call_id,
                requested_schema=ElicitationSchema(
                    properties={
                        "answer": ElicitationStringPropertySchema(
                            type="string", title="Your answer"
                        )
                    },
                    required=["answer"],
                ),
            )
            reply = await self._editor.create_elicitation(question.question, mode)
            text = NO_ANSWER
            if isinstance(reply, AcceptElicitationResponse) and reply.content:
                text = str(reply.content.get("answer") or NO_ANSWER)
            await turn.answer(question.request_id, text)
            return
        options = [
            PermissionOption(option_id=f"choice-{i}", name=choice, kind="allow_once")
            for i, choice in enumerate(question.choices)
        ]
        options.append(
            PermissionOption(
                option_id=DECIDE_YOURSELF, name="Let the agent decide", kind="reject_once"
            )
        )
        call = ToolCallUpdate(tool_call_id=tool_call_id, title=question.question, kind="other")
        chosen = await self._permission(call, options)
        if chosen is None:
            return
        if (
            chosen.startswith("choice-")
            and chosen[7:].isdigit()
            and int(chosen[7:]) < len(question.choices)
        ):
            await turn.answer(question.request_id, question.choices[int(chosen[7:])])
        else:
            await turn.answer(question.request_id, NO_ANSWER)

    async def _decide_loop(self, turn: Turn, event: epb.EngineEvent) -> None:
        cap = event.loop_cap_reached
        call_id = f"loop-cap-{event.seq}"
        what = f"The agent made {cap.iterations} tool rounds (the cap is {cap.cap}): go on?"
        await self._send(
            ToolCallStart(
                session_update="tool_call",
                tool_call_id=call_id,
                title=what,
                kind="other",
                status="pending",
            )
        )
        options = [
            PermissionOption(option_id="continue", name="Continue", kind="allow_once"),
            PermissionOption(option_id="stop", name="Stop here", kind="reject_once"),
        ]
        call = ToolCallUpdate(tool_call_id=call_id, title=what, kind="other")
        chosen = await self._permission(call, options)
        if chosen is None:
            return
        action = epb.LOOP_ACTION_CONTINUE if chosen == "continue" else epb.LOOP_ACTION_STOP
        await turn.decide_loop(LoopAnswer(action))
        await self._send(
            ToolCallProgress(
                session_update="tool_call_update", tool_call_id=call_id, status="completed"
            )
        )

    def _forms(self) -> bool:
        caps = self._capabilities
        return bool(caps and caps.elicitation and caps.elicitation.form is not None)


def _leave(_: object) -> None:
    return None


def _usage(ended: epb.TurnEnded | None) -> Usage | None:
    if ended is None or not ended.HasField("usage"):
        return None
    u = ended.usage
    return Usage(
        total_tokens=u.input_tokens + u.output_tokens,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_read_tokens=u.cache_read_tokens or None,
        cached_write_tokens=u.cache_write_tokens or None,
    )
