"""One turn: input → provider stream → tool calls → answer, with every outcome stored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from kodad import logs, metrics
from kodad.domain.events import (
    ApprovalRequested,
    ApprovalResolved,
    ContextUsage,
    Event,
    EventPayload,
    FileChanged,
    LoopCapReached,
    Notice,
    RateLimits,
    TextDelta,
    ThinkingDelta,
    TodosUpdated,
    ToolCallFinished,
    ToolCallOutput,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
    UsageReported,
    UserQuestion,
)
from kodad.domain.ids import new_id
from kodad.domain.model import (
    ApprovalMode,
    ApprovalRisk,
    Decision,
    DisconnectPolicy,
    Image,
    LoopAction,
    McpServerSpec,
    Message,
    NoticeLevel,
    Role,
    SandboxPolicy,
    SessionRecord,
    Todo,
    ToolCall,
    ToolResult,
    TurnEndReason,
    Usage,
    now_us,
)
from kodad.engine import approvals, compaction, validation
from kodad.engine.eventlog import EventLog
from kodad.engine.pending import PendingRequests
from kodad.providers import (
    LlmProvider,
    ProviderError,
    ProviderNotice,
    ProviderRequest,
    RateLimitReport,
    TextChunk,
    ThinkingChunk,
    ThinkingSignature,
    ToolCallReady,
    ToolSpec,
    UsageReport,
)
from kodad.store.base import Store, TurnRecord
from kodad.tools import (
    ApprovalScope,
    Tool,
    ToolContext,
    ToolError,
    ToolKind,
    ToolOutcome,
    ToolRegistry,
    Workspace,
)
from kodad.tools.base import Args, Description
from kodad.tools.sandbox import Confinement

log = logging.getLogger(__name__)


def _notice(level: NoticeLevel, event: ProviderNotice) -> Notice:
    retry = event.retry
    if retry is None:
        return Notice(level, event.text)
    delay_ms = round(retry.delay_s * 1000)
    return Notice(level, event.text, retry.attempt, retry.attempts, delay_ms, retry.reason)


@contextlib.contextmanager
def _count_errors(kind: str) -> Iterator[None]:
    try:
        yield
    except ProviderError as e:
        metrics.PROVIDER_ERRORS.labels(kind, e.code).inc()
        raise


@dataclass(frozen=True)
class TurnInput:
    text: str
    images: tuple[Image, ...] = ()
    on_disconnect: DisconnectPolicy = DisconnectPolicy.CANCEL
    # A compaction turn (CompactSession): summarise all but the last turn, ask nothing.
    compact: bool = False


@dataclass(frozen=True)
class ApprovalAnswer:
    decision: Decision
    feedback: str = ""


@dataclass(frozen=True)
class LoopAnswer:
    action: LoopAction
    extra_iterations: int = 0


@dataclass(frozen=True)
class TurnLimits:
    loop_cap: int
    tool_output_limit: int
    system_prompt: str
    context_window: int = 128_000
    # At the loop cap, one last round without tools asks for the answer (sub-agents)
    # instead of asking a human whether to go on.
    final_round: bool = False


FINAL_ROUND_PROMPT = (
    "You have used your budget of {cap} tool rounds. Do not call tools any more: give your "
    "final answer now, with what you did, what you found and what is left to do."
)

# The approval requests for starting a workspace's MCP server name this as their tool.
WORKSPACE_SERVER_TOOL = "start_mcp_server"


@dataclass(frozen=True)
class WorkspaceServers:
    """MCP servers a workspace's profile declares, which wait for a human's approval before
    they start; `start` starts the approved ones and returns their tools and problems."""

    specs: tuple[McpServerSpec, ...]
    start: Callable[[list[McpServerSpec]], Awaitable[tuple[list[Tool], list[str]]]]


# Tools whose calls in one response run at the same time (each a sub-agent of its own).
PARALLEL_TOOLS = frozenset({"invoke_agent"})

# Runs a sub-agent for a turn: (parent turn, invoke_agent call id, agent profile, task).
SubagentRunner = Callable[["Turn", str, str, str], Awaitable[ToolOutcome]]
# Relays an event of a sub-agent's turn into its parent's log; returns the parent's event.
Relay = Callable[[EventPayload], Event]


class Turn:
    """Runs as a task owned by the SessionManager, not by any client stream."""

    def __init__(
        self,
        *,
        turn_id: str,
        session: SessionRecord,
        turn_input: TurnInput,
        log: EventLog,
        store: Store,
        provider: LlmProvider,
        tools: ToolRegistry,
        limits: TurnLimits,
        on_finished: Callable[[Turn], None],
        subagents: SubagentRunner | None = None,
        relay: Relay | None = None,
        pending: PendingRequests | None = None,
        notices: list[str] | None = None,
        workspace_servers: WorkspaceServers | None = None,
    ) -> None:
        self.id = turn_id
        self.session = session
        self.input = turn_input
        # A sub-agent shares its parent's open questions, so the parent's stream answers them.
        self.pending = pending if pending is not None else PendingRequests()
        self._subagents = subagents
        self._relay = relay
        self._notices = notices or []  # warnings to emit after turn_started
        self._workspace_servers = workspace_servers
        self._history: list[Message] = []
        self._log = log
        self._store = store
        self._provider = provider
        self._tools = tools
        self._limits = limits
        self._on_finished = on_finished
        self._usage = Usage()
        self._partial_text: list[str] | None = None
        self._partial_thinking: list[str] = []
        self._unanswered: list[ToolCall] = []
        # Calls the output token limit ended inside: answered with an error, never run.
        self._cut_off: set[str] = set()
        self._cancel_requested = False
        # "starting" until the task runs, "running", then "ending" while the end is stored.
        self._phase = "starting"
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
        self.started_seq = self._emit(TurnStarted(self.input.text, len(self.input.images))).seq
        for text in self._notices:
            self._emit(Notice(NoticeLevel.WARNING, text))
        self.task = asyncio.create_task(self.run(), name=f"turn {self.id}")

    def cancel(self) -> None:
        """Asks the turn to stop at its next await. Idempotent. Before the turn's task runs
        it stops at its first step; once the turn is storing its end, that finishes."""
        if self.task is None or self.task.done() or self._cancel_requested:
            return
        self._cancel_requested = True
        if self._phase == "running":
            self.task.cancel()

    def _emit_all(self, payload: EventPayload) -> tuple[Event, ...]:
        """Emits into the session's log and, for a sub-agent, relays to the parent's (its
        turn_started and turn_ended stay in its own log); returns the event of each log."""
        event = self._log.emit(self.id, payload)
        if self._relay is None or isinstance(payload, TurnStarted | TurnEnded):
            return (event,)
        return (event, self._relay(payload))

    def _emit(self, payload: EventPayload) -> Event:
        return self._emit_all(payload)[0]

    def _ask(self, request_id: str, kind: str, payload: EventPayload) -> asyncio.Future[object]:
        """Emits a question and opens it under its event in every log (re-sent to clients
        watching either session)."""
        return self.pending.open(request_id, kind, *self._emit_all(payload)).future

    async def run(self) -> None:
        logs.bind(self.session.id, self.id)
        attributes = {"kodad.session_id": self.session.id, "kodad.turn_id": self.id}
        with metrics.TRACER.start_as_current_span("kodad.turn", attributes=attributes) as span:
            await self._run()
            span.set_attribute("kodad.reason", self._end_reason.value)

    async def _run(self) -> None:
        log.info("turn started")
        reason, code, message = TurnEndReason.COMPLETED, "", ""
        self._phase = "running"
        try:
            if self._cancel_requested:  # cancelled before the task got to run
                raise asyncio.CancelledError
            self._history = await self._store.list_messages(self.session.id)
            await self._store.begin_turn(TurnRecord(self.session.id, self.id, now_us()))
            if self.input.compact:
                window = self.session.provider.context_window_tokens or self._limits.context_window
                await self._compact(compaction.context(self._history), window, keep_share=0.0)
                reason = TurnEndReason.COMPLETED
            else:
                await self._append(
                    Message(Role.USER, self.id, text=self.input.text, images=self.input.images)
                )
                await self._start_workspace_servers()
                reason = await self._loop()
        except asyncio.CancelledError:
            if self.task is not None:
                self.task.uncancel()
            reason, code, message = TurnEndReason.CANCELLED, "", ""
        except ProviderError as e:
            reason, code, message = TurnEndReason.FAILED, e.code, e.message
        except Exception as e:
            log.exception("turn %s of session %s failed", self.id, self.session.id)
            reason, code, message = TurnEndReason.FAILED, "internal", f"{type(e).__name__}: {e}"
        self._phase = "ending"
        try:
            self._end_reason, self.error = reason, (code, message)
            await self._settle(reason)
            await self._end(reason, code, message)
            log.info("turn ended: %s%s", reason.value, f" ({code}: {message})" if code else "")
        except Exception as e:
            log.exception("could not store the end of turn %s", self.id)
            self._on_finished(self)
            failure = TurnEnded(TurnEndReason.FAILED, "internal", f"storing the turn failed: {e}")
            self._emit(failure)

    async def _loop(self) -> TurnEndReason:
        cap = self._limits.loop_cap
        rounds = 0
        while True:
            calls = await self._provider_round()
            if not calls:
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

    async def _run_tools(self, calls: tuple[ToolCall, ...]) -> None:
        """Runs a response's calls in order; consecutive calls of a parallel tool together."""
        i = 0
        while i < len(calls):
            j = i + 1
            if calls[i].tool_name in PARALLEL_TOOLS:
                while j < len(calls) and calls[j].tool_name in PARALLEL_TOOLS:
                    j += 1
            if j - i == 1:
                await self._finish_call(calls[i], await self._run_tool(calls[i]))
            else:
                async with asyncio.TaskGroup() as group:
                    runs = [group.create_task(self._run_tool(call)) for call in calls[i:j]]
                for call, run in zip(calls[i:j], runs, strict=True):  # stored in call order
                    await self._finish_call(call, run.result())
            i = j

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
        window = self.session.provider.context_window_tokens or self._limits.context_window
        used = compaction.context_tokens(overhead, messages)
        if compaction.needs_compaction(used, window):
            await self._compact(messages, window)
            messages = compaction.context(self._history)
            used = compaction.context_tokens(overhead, messages)
        self._emit(ContextUsage(used, window))
        request = ProviderRequest(
            model=self.session.provider.model,
            system_prompt=self._limits.system_prompt,
            messages=messages,
            tools=tools,
            max_output_tokens=self.session.provider.max_output_tokens,
            thinking_budget_tokens=self.session.provider.thinking_budget_tokens,
            prior_rounds=sum(1 for m in self._history if m.role is Role.ASSISTANT),
            subagent=self.session.profile if self.session.parent_session_id else "",
        )
        text: list[str] = []
        self._partial_text, self._partial_thinking = text, []
        kind = self.session.provider.kind.value
        with (
            metrics.TRACER.start_as_current_span(
                "kodad.provider_round",
                attributes={"kodad.provider": kind, "kodad.model": request.model},
            ),
            metrics.timed(metrics.PROVIDER_SECONDS, kind),
            _count_errors(kind),
        ):
            calls, usage, signature = await self._stream_round(request, text)
        self._partial_text = None
        if text:
            self.answer = "".join(text)
        await self._append(
            Message(
                Role.ASSISTANT,
                self.id,
                text="".join(text),
                thinking="".join(self._partial_thinking),
                thinking_signature=signature,
                tool_calls=tuple(calls),
                usage=usage,
            )
        )
        self._unanswered = list(calls)
        if usage is not None:
            self._usage += usage
            self._emit(UsageReported(usage))
        return tuple(calls)

    async def _stream_round(
        self, request: ProviderRequest, text: list[str]
    ) -> tuple[list[ToolCall], Usage | None, str]:
        """Streams one provider call into events; returns its calls, usage and signature."""
        calls: list[ToolCall] = []
        usage: Usage | None = None
        signature = ""
        async with contextlib.aclosing(self._provider.stream(request)) as stream:
            async for event in stream:
                if isinstance(event, TextChunk):
                    if event.text:
                        text.append(event.text)
                        self._emit(TextDelta(event.text))
                        await self._log.backpressure()
                elif isinstance(event, ThinkingChunk):
                    if event.text:
                        self._partial_thinking.append(event.text)
                        self._emit(ThinkingDelta(event.text))
                        await self._log.backpressure()
                elif isinstance(event, ThinkingSignature):
                    signature += event.signature
                elif isinstance(event, ToolCallReady):
                    calls.append(event.call)
                    if event.cut_off:
                        self._cut_off.add(event.call.call_id)
                elif isinstance(event, UsageReport):
                    usage = event.usage
                elif isinstance(event, ProviderNotice):
                    level = NoticeLevel.WARNING if event.warning else NoticeLevel.INFO
                    self._emit(_notice(level, event))
                elif isinstance(event, RateLimitReport):
                    self._emit(RateLimits(event.limits))
        return calls, usage, signature

    async def _compact(
        self, messages: list[Message], window: int, keep_share: float = compaction.KEEP_SHARE
    ) -> None:
        """Summarises the older part of `messages` with the session's provider and stores
        the summary; the turns after the cut stay verbatim."""
        cut = compaction.plan_cut(messages, window, keep_share)
        if cut is None:
            text = (
                "there is nothing before the last turn to compact"
                if self.input.compact
                else f"the history is near the context window of {window} tokens and the "
                "current turn cannot be compacted further"
            )
            self._emit(Notice(NoticeLevel.WARNING, text))
            return
        older = [m for m in messages if m.index < cut or m.role is Role.SUMMARY]
        request = ProviderRequest(
            model=self.session.provider.model,
            system_prompt=compaction.SUMMARY_PROMPT,
            messages=[Message(Role.USER, self.id, text=compaction.transcript(older))],
            max_output_tokens=self.session.provider.max_output_tokens,
            prior_rounds=sum(1 for m in self._history if m.role is Role.ASSISTANT),
            purpose="summary",
        )
        parts: list[str] = []
        async with contextlib.aclosing(self._provider.stream(request)) as stream:
            async for event in stream:
                if isinstance(event, TextChunk):
                    parts.append(event.text)
                elif isinstance(event, UsageReport):
                    self._usage += event.usage
                    self._emit(UsageReported(event.usage))
        through = cut - 1
        await self._append(
            Message(
                Role.SUMMARY,
                self.id,
                text=compaction.summary_text("".join(parts), through),
                summarized_through=through,
            )
        )
        self._emit(
            Notice(
                NoticeLevel.INFO,
                f"compacted the history: messages 1-{through} are summarised to fit the "
                f"context window of {window} tokens (they stay stored)",
            )
        )

    # The session's task list, for todo_read / todo_write (kodad.tools.base.TodoBoard).

    def current(self) -> tuple[Todo, ...]:
        return self.session.todos

    async def replace(self, todos: tuple[Todo, ...]) -> None:
        await self._store.set_todos(self.session.id, todos)
        self.session.todos = todos
        self._emit(TodosUpdated(todos))

    async def _ask_user(self, call_id: str, question: str, choices: tuple[str, ...]) -> str:
        """Emits user_question and waits for the user's answer (the first one wins)."""
        request_id = new_id("q")
        question_event = UserQuestion(request_id, call_id, question, choices)
        future = self._ask(request_id, "question", question_event)
        try:
            answer = await future
        finally:
            self.pending.close(request_id)
        return str(answer)

    async def _run_tool(self, call: ToolCall) -> ToolOutcome:
        """Runs one call (asking first where the rules say so); returns what the model gets."""
        self._emit(ToolCallStarted(call.call_id, call.tool_name, call.arguments_json))
        tool = self._tools.get(call.tool_name)
        workspace = Workspace(self.session.workspace)

        def emit_output(chunk: str) -> None:
            self._emit(ToolCallOutput(call.call_id, chunk))

        ctx = ToolContext(
            workspace=workspace,
            output_limit=self._limits.tool_output_limit,
            turn_id=self.id,
            emit_output=emit_output,
            drain=self._log.backpressure,
            todos=self,
            tenant=self.session.tenant,
            ask=lambda question, choices: self._ask_user(call.call_id, question, choices),
            history=lambda: self._store.list_messages(self.session.id),
            subagent=None
            if self._subagents is None
            else lambda agent, task: self._run_subagent(call.call_id, agent, task),
        )
        outcome: ToolOutcome | None
        try:
            if call.call_id in self._cut_off:
                limit = self.session.provider.max_output_tokens
                outcome = ToolOutcome(
                    "not run: the output token limit"
                    + (f" ({limit} tokens)" if limit else "")
                    + " ended the response inside this call, so its arguments are incomplete;"
                    " make smaller calls (e.g. write a large file in parts) or raise the"
                    " session's provider.max_output_tokens",
                    is_error=True,
                )
            elif tool is None:
                known = ", ".join(self._tools.names)
                refusal = self._tools.refusal(call.tool_name)
                text = refusal or f"unknown tool {call.tool_name!r}"
                outcome = ToolOutcome(f"{text}; tools: {known}", True)
            elif (
                self.session.approval_mode is ApprovalMode.READ_ONLY
                and tool.kind is not ToolKind.READ_ONLY
            ):
                outcome = ToolOutcome(
                    "refused: the session is in read-only mode; only reading tools may run", True
                )
            else:
                args = Args(call.arguments_json)
                gate = await self._gate(tool, call, args, workspace)
                if isinstance(gate, ToolOutcome):
                    outcome = gate
                else:
                    ctx.confinement = self._confinement(approved=gate)
                    try:
                        with (
                            metrics.TRACER.start_as_current_span(
                                "kodad.tool",
                                attributes={"kodad.tool": tool.name, "kodad.call_id": call.call_id},
                            ),
                            metrics.timed(metrics.TOOL_SECONDS, tool.name),
                        ):
                            outcome = await tool.run(args, ctx)
                    finally:
                        await self._record_changes(ctx)
        except ToolError as e:
            outcome = ToolOutcome(str(e), is_error=True)
        except OSError as e:
            outcome = ToolOutcome(f"{type(e).__name__}: {e}", is_error=True)
        return outcome

    async def _run_subagent(self, call_id: str, agent: str, task: str) -> ToolOutcome:
        assert self._subagents is not None
        return await self._subagents(self, call_id, agent, task)

    def _confinement(self, *, approved: bool) -> Confinement:
        """What the processes of a call may do: the session's sandbox policy for a call a
        human approved (or any call in AUTO), the least for one that runs unasked — so a
        command wrongly taken for a reader, or allowed by a rule, still cannot write."""
        sandbox = self.session.sandbox
        return Confinement(
            write=approved and sandbox.policy is not SandboxPolicy.READ_ONLY,
            network=sandbox.network,
            unconfined=approved and sandbox.policy is SandboxPolicy.FULL_ACCESS,
        )

    async def _gate(
        self, tool: Tool, call: ToolCall, args: Args, workspace: Workspace
    ) -> ToolOutcome | bool:
        """Asks a human when the mode and rules say so. A bool: the call may run, True when
        a human approved it (or nobody is ever asked: AUTO); otherwise the outcome the
        model gets instead."""
        if self.session.approval_mode is ApprovalMode.AUTO:
            return True
        if not approvals.needs_approval(self.session.approval_mode, tool.kind):
            return False
        scope = ApprovalScope(workspace, lambda path: self._store.owns_file(self.session.id, path))
        risk = await tool.needs_approval(args, scope)
        if risk is None:
            return False
        rules = self.session.approval_rules
        if risk is not ApprovalRisk.HIGH and approvals.allowed(
            rules, tool.name, tool.kind, call.arguments_json
        ):
            return False
        description = tool.describe(args, workspace)
        answer = await self._approval(
            call.call_id, call.tool_name, call.arguments_json, description, risk
        )
        decision, feedback = answer.decision, answer.feedback
        if decision is Decision.APPROVE_ALWAYS and len(rules) < validation.MAX_APPROVAL_RULES:
            rule = approvals.rule_for(tool.name, tool.kind, call.arguments_json)
            await self._store.add_approval_rule(self.session.id, rule)
            if rule not in rules:
                self.session.approval_rules = (*rules, rule)
        if decision is Decision.REJECT:
            text = f"rejected by the user: {feedback}" if feedback else "rejected by the user"
            return ToolOutcome(text, is_error=True)
        return True

    async def _approval(
        self,
        call_id: str,
        tool_name: str,
        arguments_json: str,
        description: Description,
        risk: ApprovalRisk,
    ) -> ApprovalAnswer:
        """Asks a human and waits for the decision (REJECT when the session's approval
        timeout passes first); the decision is emitted as approval_resolved."""
        request_id = new_id("r")
        summary = description.summary
        request = ApprovalRequested(
            request_id, call_id, tool_name, arguments_json, summary, description.preview, risk
        )
        future = self._ask(request_id, "approval", request)
        timeout_s = self.session.approval_timeout_ms / 1000
        try:
            answer = await asyncio.wait_for(future, timeout_s or None)
        except TimeoutError:
            answer = ApprovalAnswer(Decision.REJECT, f"no answer within {timeout_s:g} s")
            self._emit(
                Notice(
                    NoticeLevel.WARNING,
                    f"approval request {request_id} ({summary}) was not answered "
                    f"within {timeout_s:g} s and was rejected",
                )
            )
        finally:
            self.pending.close(request_id)
        assert isinstance(answer, ApprovalAnswer)
        self._emit(ApprovalResolved(request_id, answer.decision))
        return answer

    async def _start_workspace_servers(self) -> None:
        """Asks before starting each MCP server a workspace's profile declares (workspace
        content must not run programs unasked); the approved ones' tools join the turn."""
        servers = self._workspace_servers
        if servers is None:
            return
        approved = []
        for spec in servers.specs:
            command = " ".join(spec.command) or spec.url
            arguments = json.dumps(
                {"name": spec.name, "command": list(spec.command), "url": spec.url}
            )
            description = Description(
                f"Start the MCP server {spec.name!r} the workspace declares ({command})", arguments
            )
            answer = await self._approval(
                "", WORKSPACE_SERVER_TOOL, arguments, description, ApprovalRisk.HIGH
            )
            if answer.decision is Decision.REJECT:
                self._emit(
                    Notice(
                        NoticeLevel.INFO,
                        f"MCP server {spec.name!r} of the workspace was not started: rejected",
                    )
                )
            else:
                approved.append(spec)
        if not approved:
            return
        tools, problems = await servers.start(approved)
        for problem in problems:
            self._emit(Notice(NoticeLevel.WARNING, problem))
        self._tools = self._tools.with_tools(tools)

    async def _record_changes(self, ctx: ToolContext) -> None:
        for path, change in ctx.changes:
            await self._store.record_file_change(self.session.id, self.id, path, change, now_us())
            self._emit(FileChanged(path, change))
        ctx.changes.clear()

    async def _finish_call(self, call: ToolCall, outcome: ToolOutcome) -> None:
        result = ToolResult(call.call_id, outcome.output, outcome.is_error, outcome.truncated)
        await self._append(Message(Role.TOOL, self.id, tool_result=result))
        self._unanswered.remove(call)
        self._emit(ToolCallFinished(call.call_id, result.output, result.is_error, result.truncated))

    async def _ask_loop(self, iterations: int, cap: int) -> LoopAnswer:
        request_id = f"loop-{iterations}"
        future = self._ask(request_id, "loop", LoopCapReached(iterations, cap))
        try:
            answer = await future
        finally:
            self.pending.close(request_id)
        assert isinstance(answer, LoopAnswer)
        return answer

    async def _settle(self, reason: TurnEndReason) -> None:
        """Leaves a valid history: partial text kept, every tool call answered."""
        if self._partial_text is not None:
            text, thinking = "".join(self._partial_text), "".join(self._partial_thinking)
            self._partial_text = None
            if text or thinking:
                await self._append(Message(Role.ASSISTANT, self.id, text=text, thinking=thinking))
        why = "cancelled" if reason is TurnEndReason.CANCELLED else "not run: the turn ended"
        for call in list(self._unanswered):
            await self._finish_call(call, ToolOutcome(why, is_error=True))

    async def _end(self, reason: TurnEndReason, code: str, message: str) -> None:
        end_time = now_us()
        await self._store.end_turn(
            TurnRecord(self.session.id, self.id, 0, end_time, reason, code, message, self._usage)
        )
        # Free the session, then record the end in the same step (no await between), so a
        # client that sees turn_ended can start the next turn at once and seqs stay in order.
        self._on_finished(self)
        self._emit(TurnEnded(reason, code, message, self._usage))
        await self._log.flush()
