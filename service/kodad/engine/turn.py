"""One turn: input → provider stream → tool calls → answer, with every outcome stored."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from kodad import logs, metrics
from kodad.domain.events import (
    ContextUsage,
    Event,
    EventPayload,
    Notice,
    ToolCallFinished,
    ToolCallOutput,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
    UsageReported,
    UserInputAdded,
)
from kodad.domain.model import (
    LoopAction,
    Message,
    NoticeLevel,
    Role,
    SessionRecord,
    ToolCall,
    ToolResult,
    TurnEndReason,
    Usage,
    now_us,
)
from kodad.engine import calls, compaction, rounds
from kodad.engine.budget import BudgetSpent
from kodad.engine.checkpoints import TurnCheckpoints
from kodad.engine.gate import ApprovalGate
from kodad.engine.inputs import FINAL_ROUND_PROMPT, TurnDeps, TurnInput, TurnPhase
from kodad.engine.output import OutputContract
from kodad.engine.pending import PendingRequests
from kodad.engine.questions import Questions
from kodad.engine.summary import compacted_notice, summarise
from kodad.engine.todos import TodoList
from kodad.providers import ProviderError, ProviderRequest, ToolSpec
from kodad.store.base import TurnRecord
from kodad.tools import ToolContext, ToolError, ToolOutcome, Workspace
from kodad.tools.base import Args

T = TypeVar("T")
log = logging.getLogger(__name__)


class Turn(Questions):
    """Runs as a task owned by the SessionManager, not by any client stream."""

    def __init__(
        self, turn_id: str, session: SessionRecord, turn_input: TurnInput, deps: TurnDeps
    ) -> None:
        self.id = turn_id
        self.session = session
        self.input = turn_input
        self.pending = deps.pending if deps.pending is not None else PendingRequests()
        self._deps = deps
        self._store = deps.store
        self._limits = deps.limits
        self._tools = deps.tools
        self._gate = ApprovalGate(self, deps.store)
        self._todos = TodoList(session, deps.store, self.emit)
        self._history: list[Message] = []
        self._usage = Usage()
        self._round: rounds.Round | None = None  # the provider call streaming now
        self._unanswered: list[ToolCall] = []
        self._steers: list[TurnInput] = []  # arrived, not yet in the history
        self._output = OutputContract.of(turn_input.output_schema)
        self._checkpoints = TurnCheckpoints(
            deps.snapshots, deps.store, session.id, turn_id, session.workspace, self.emit
        )
        # Calls the output token limit ended inside: answered with an error, never run.
        self._cut_off: set[str] = set()
        self._cancel_requested = False
        self._ended = False  # turn_ended was emitted
        self._phase = TurnPhase.STARTING
        self._end_reason = TurnEndReason.FAILED
        self.error = ("", "")  # (code, message) of a failed turn
        # The text of the last round that had any: the turn's answer.
        self.answer = ""
        self.started_seq = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def end_reason(self) -> TurnEndReason:
        """Why the turn ended (meaningful once its task is done)."""
        return self._end_reason

    def start(self) -> None:
        """Emits turn_started at once (the first event of every turn) and runs the turn."""
        self.started_seq = self.emit(TurnStarted(self.input.text, len(self.input.images))).seq
        for text in self._deps.notices:
            self.emit(Notice(NoticeLevel.WARNING, text))
        self._checkpoints.start()
        self.task = asyncio.create_task(self.run(), name=f"turn {self.id}")

    def cancel(self) -> None:
        """Asks the turn to stop at its next await. Idempotent. Before the turn's task runs
        it stops at its first step; once the turn is storing its end, that finishes."""
        if self.task is None or self.task.done() or self._cancel_requested:
            return
        self._cancel_requested = True
        if self._phase is TurnPhase.RUNNING:
            self.task.cancel()

    def steer(self, given: TurnInput) -> bool:
        """Adds `given` to what the model sees from its next request on. False when the turn
        takes no more input (it is ending, cancelled, or compacting): queue it instead."""
        if self._phase is TurnPhase.ENDING or self._cancel_requested or self.input.compact:
            return False
        self._steers.append(given)
        return True

    def late_steers(self) -> list[TurnInput]:
        """The steers that came too late for the turn (once it has ended)."""
        taken, self._steers = self._steers, []
        return taken

    async def _take_steers(self) -> None:
        """Stores the steers that arrived as user messages, each announced."""
        while self._steers:
            given = self._steers.pop(0)
            await self._append(Message(Role.USER, self.id, text=given.text, images=given.images))
            self.emit(UserInputAdded(given.text, len(given.images)))

    def _emit_all(self, payload: EventPayload) -> tuple[Event, ...]:
        """Emits into the session's log and, for a sub-agent, relays to the parent's (its
        turn_started and turn_ended stay in its own log); returns the event of each log."""
        event = self._deps.log.emit(self.id, payload)
        relay = self._deps.relay
        if relay is None or isinstance(payload, TurnStarted | TurnEnded):
            return (event,)
        return (event, relay(payload))

    def emit(self, payload: EventPayload) -> Event:
        return self._emit_all(payload)[0]

    async def run(self) -> None:
        logs.bind(self.session.id, self.id)
        attributes = {"kodad.session_id": self.session.id, "kodad.turn_id": self.id}
        with metrics.TRACER.start_as_current_span("kodad.turn", attributes=attributes) as span:
            await self._run()
            span.set_attribute("kodad.reason", self._end_reason.value)

    async def _run(self) -> None:
        log.info("turn started")
        reason, code, message = TurnEndReason.COMPLETED, "", ""
        self._phase = TurnPhase.RUNNING
        try:
            if self._cancel_requested:  # cancelled before the task got to run
                raise asyncio.CancelledError
            if (history := self._deps.history) is None:  # else kept since the last turn
                self._deps.keep_history(history := await self._store.list_messages(self.session.id))
            self._history = history
            record = TurnRecord(self.session.id, self.id, now_us())
            if self.input.compact:
                await self._store.begin_turn(record)
                await self._compact(
                    compaction.context(self._history), self._window(), keep_share=0.0
                )
                reason = TurnEndReason.COMPLETED
            else:
                prompt = Message(Role.USER, self.id, text=self.input.text, images=self.input.images)
                # One write: the turn, its prompt, and the session's title from it.
                stored = await self._store.begin_turn(record, prompt, title=self.session.title)
                assert stored is not None
                self._history.append(stored)
                if self._deps.workspace_servers is not None:
                    started = await self._gate.start_workspace_servers(self._deps.workspace_servers)
                    self._tools = self._tools.with_tools(started)
                reason = await self._loop()
        except asyncio.CancelledError:
            if self.task is not None:
                self.task.uncancel()
            reason, code, message = TurnEndReason.CANCELLED, "", ""
        except ProviderError as e:
            reason, code, message = TurnEndReason.FAILED, e.code, e.message
        except BudgetSpent as e:
            reason, code, message = TurnEndReason.BUDGET_EXHAUSTED, "", str(e)
        except Exception as e:
            log.exception("turn %s of session %s failed", self.id, self.session.id)
            reason, code, message = TurnEndReason.FAILED, "internal", f"{type(e).__name__}: {e}"
        self._phase = TurnPhase.ENDING
        try:
            self._end_reason, self.error = reason, (code, message)
            await self._settle(reason)
            await self._end(reason, code, message)
            log.info("turn ended: %s%s", reason.value, f" ({code}: {message})" if code else "")
        except Exception as e:
            log.exception("could not store the end of turn %s", self.id)
            self._deps.on_finished(self.id)
            if not self._ended:  # else its turn_ended waits in the log, stored on a retry
                failure = f"storing the turn failed: {e}"
                self.emit(TurnEnded(TurnEndReason.FAILED, "internal", failure))

    async def _loop(self) -> TurnEndReason:
        cap = self._limits.loop_cap
        rounds = 0
        while True:
            await self._take_steers()  # the safe point: no call waits for its result
            if spent := self._limits.budget.spent(self._usage):
                raise BudgetSpent(spent)
            calls = await self._provider_round()
            if not calls:
                if self._steers:  # more input came while the model answered
                    continue
                if self._output and (again := self._output.check(self._history[-1].text)):
                    await self._append(Message(Role.USER, self.id, text=again))
                    continue
                return TurnEndReason.COMPLETED
            await self._run_tools(calls)
            rounds += 1
            if rounds >= cap:
                if self._limits.final_round:
                    return await self._final_round(cap)
                answer = await self._ask_loop(rounds, cap)
                if answer.action is LoopAction.STOP:
                    return TurnEndReason.STOPPED_AT_LOOP_CAP
                cap = rounds + (answer.extra_iterations or self._limits.loop_cap)

    async def _run_tools(self, calls_made: tuple[ToolCall, ...]) -> None:
        await calls.run_all(calls_made, self._run_tool, self._finish_call)

    async def _final_round(self, cap: int) -> TurnEndReason:
        """The grace round of a sub-agent at its loop cap: the answer, without tools."""
        await self._append(Message(Role.USER, self.id, text=FINAL_ROUND_PROMPT.format(cap=cap)))
        calls = await self._provider_round(offer_tools=False)
        for call in calls:
            await self._finish_call(call, ToolOutcome("not run: the tool budget is spent", True))
        return TurnEndReason.STOPPED_AT_LOOP_CAP if calls else TurnEndReason.COMPLETED

    async def _append(self, message: Message) -> Message:
        stored = await self._store.append_message(self.session.id, message)
        self._history.append(stored)
        return stored

    async def _provider_round(self, *, offer_tools: bool = True) -> tuple[ToolCall, ...]:
        tools = [ToolSpec(t.name, t.description, t.parameters) for t in self._tools]
        tools = tools if offer_tools else []
        overhead = compaction.estimate_tokens(self._limits.system_prompt)
        overhead += compaction.tools_tokens([t.parameters for t in tools])
        messages = compaction.context(self._history)
        window = self._window()
        used = compaction.context_tokens(overhead, messages)
        if compaction.needs_compaction(used, window):
            await self._compact(messages, window)
            messages = compaction.context(self._history)
            used = compaction.context_tokens(overhead, messages)
        self.emit(ContextUsage(used, window))
        provider, output = self.session.provider, self._output
        request = ProviderRequest(
            model=provider.model,
            system_prompt="\n\n".join(
                p for p in (self._limits.system_prompt, output and output.instruction()) if p
            ),
            messages=messages,
            tools=tools,
            max_output_tokens=provider.max_output_tokens,
            thinking_budget_tokens=provider.thinking_budget_tokens,
            prior_rounds=self._prior_rounds(),
            subagent=self.session.profile if self.session.parent_session_id else "",
            output_schema=output.schema if output else None,
            force_output=bool(output and output.repairs),
        )
        current = self._round = rounds.Round()
        kind = provider.kind.value
        with (
            metrics.TRACER.start_as_current_span(
                "kodad.provider_round",
                attributes={"kodad.provider": kind, "kodad.model": request.model},
            ),
            metrics.timed(metrics.PROVIDER_SECONDS, kind),
            rounds.count_errors(kind),
        ):
            await rounds.stream(
                self._deps.provider, request, current, self.emit, self._deps.log.backpressure
            )
        self._round = None
        self._cut_off |= current.cut_off
        if current.text:
            self.answer = "".join(current.text)
        usage = current.usage and self._limits.prices.priced(request.model, current.usage)
        await self._append(
            Message(
                Role.ASSISTANT,
                self.id,
                text="".join(current.text),
                thinking="".join(current.thinking),
                thinking_signature=current.signature,
                tool_calls=tuple(current.calls),
                usage=usage,
            )
        )
        self._unanswered = list(current.calls)
        if usage is not None:
            self._usage += usage
            self.emit(UsageReported(usage))
        return tuple(current.calls)

    def _window(self) -> int:
        return self.session.provider.context_window_tokens or self._limits.context_window

    def _prior_rounds(self) -> int:
        return compaction.rounds(self._history)

    async def _compact(
        self, messages: list[Message], window: int, keep_share: float = compaction.KEEP_SHARE
    ) -> None:
        """Summarises the older part of `messages` with the session's provider and stores
        the summary; the turns after the cut stay verbatim."""
        summary, usage = await summarise(
            session=self.session,
            turn_id=self.id,
            provider=self._deps.provider,
            messages=messages,
            prior_rounds=self._prior_rounds(),
            window=window,
            keep_share=keep_share,
            emit=self.emit,
            drain=self._deps.log.backpressure,
            explicit=self.input.compact,
        )
        if usage is not None:
            self._usage += self._limits.prices.priced(self.session.provider.model, usage)
        if summary is not None:
            await self._append(summary)
            self.emit(compacted_notice(summary.summarized_through, window))

    async def _run_tool(self, call: ToolCall) -> ToolOutcome:
        """Runs one call (asking first where the rules say so); returns what the model gets."""
        self.emit(ToolCallStarted(call.call_id, call.tool_name, call.arguments_json))
        tool = self._tools.get(call.tool_name)
        workspace = Workspace(self.session.workspace)
        subagents, call_id = self._deps.subagents, call.call_id
        ctx = ToolContext(
            workspace=workspace,
            output_limit=self._limits.tool_output_limit,
            turn_id=self.id,
            emit_output=lambda chunk, omitted: self.emit(ToolCallOutput(call_id, chunk, omitted)),
            stream_limit=self._limits.tool_stream_limit,
            drain=self._deps.log.backpressure,
            todos=self._todos,
            tenant=self.session.tenant,
            ask=lambda question, choices: self._ask_user(call.call_id, question, choices),
            history=lambda: self._store.list_messages(self.session.id),
            subagent=None
            if subagents is None
            else lambda agent, task: subagents(self, call.call_id, agent, task),
        )
        try:
            outcome = calls.refusal(call, tool, self._tools, self.session, self._cut_off)
            if outcome is None and tool is not None:
                args = Args(call.arguments_json)
                gate = await self._gate.check(tool, call, args, workspace)
                if isinstance(gate, ToolOutcome):
                    return gate
                ctx.confinement = self._gate.confinement(approved=gate)
                async with self._checkpoints.around(call.call_id, ctx, tool.kind):
                    return await calls.run(tool, args, ctx, call.call_id)
        except ToolError as e:
            return ToolOutcome(str(e), is_error=True)
        except OSError as e:
            return ToolOutcome(f"{type(e).__name__}: {e}", is_error=True)
        assert outcome is not None  # refused: no tool, or not in this mode
        return outcome

    async def _finish_call(self, call: ToolCall, outcome: ToolOutcome) -> None:
        result = ToolResult(call.call_id, outcome.output, outcome.is_error, outcome.truncated)
        await self._append(Message(Role.TOOL, self.id, tool_result=result))
        self._unanswered.remove(call)
        self.emit(ToolCallFinished(call.call_id, result.output, result.is_error, result.truncated))

    async def _settle(self, reason: TurnEndReason) -> None:
        """Leaves a valid history: partial text kept, every tool call answered."""
        if self._round is not None:
            text, thinking = "".join(self._round.text), "".join(self._round.thinking)
            self._round = None
            if text or thinking:
                await self._append(Message(Role.ASSISTANT, self.id, text=text, thinking=thinking))
        why = "cancelled" if reason is TurnEndReason.CANCELLED else "not run: the turn ended"
        for call in list(self._unanswered):
            await self._finish_call(call, ToolOutcome(why, is_error=True))
        await self._checkpoints.finish()

    async def _end(self, reason: TurnEndReason, code: str, message: str) -> None:
        # Free the session, then record the end in the same step (no await between), so a
        # client that sees turn_ended can start the next turn at once and seqs stay in order.
        # The store ends the turn's row with its turn_ended event, in one transaction.
        self._deps.on_finished(self.id)
        output_json = self._output.output_json if self._output else ""
        self.emit(TurnEnded(reason, code, message, self._usage, output_json))
        self._ended = True
        await self._deps.log.flush()
