"""SessionManager: the live sessions of the service, their turns and their event logs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kodad import metrics
from kodad.domain.access import LOCAL, Caller, Limits, ProviderKeys
from kodad.domain.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    KodaError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TurnAlreadyRunning,
    Unavailable,
)
from kodad.domain.events import (
    Event,
    EventPayload,
    FileChanged,
    Notice,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
)
from kodad.domain.ids import new_id
from kodad.domain.model import (
    ApprovalMode,
    Decision,
    FileChange,
    LoopAction,
    McpServerSpec,
    Message,
    ModelInfo,
    NoticeLevel,
    ProviderConfig,
    Role,
    SandboxPolicy,
    SandboxSettings,
    SessionRecord,
    ToolResult,
    TurnEndReason,
    now_us,
)
from kodad.engine import validation
from kodad.engine.eventlog import EventLog, EventWriter
from kodad.engine.pending import PendingRequests
from kodad.engine.profiles import AgentProfile, ProfileCatalog
from kodad.engine.turn import (
    ApprovalAnswer,
    LoopAnswer,
    Relay,
    Turn,
    TurnInput,
    TurnLimits,
    WorkspaceServers,
)
from kodad.providers import ProviderError, ProviderRegistry
from kodad.store.base import Cluster, LeaseHeld, Store, TurnRecord
from kodad.tools import Tool, ToolError, ToolOutcome, ToolRegistry
from kodad.tools.mcp import McpHub
from kodad.tools.memory import memory_prompt
from kodad.tools.sandbox import Sandbox
from kodad.tools.shell import kill_orphans

log = logging.getLogger(__name__)

MODELS_TTL_S = 60.0


def _models_key(provider: ProviderConfig) -> tuple[str, ...]:
    """What a provider's model list depends on: the server and the key it is asked with."""
    return (provider.kind.value, provider.base_url, provider.api_key_env)


BASE_SYSTEM_PROMPT = """\
You are kodad, a coding agent. You work in the workspace directory {workspace} through \
your tools: read and search before you change, make focused edits, run the project's \
checks with bash when useful, and answer briefly with what you did."""

SUBAGENT_PROMPT = """\
You are a sub-agent: another agent gave you the task below. Work on it alone (nobody \
answers follow-up questions in this conversation) and end with a final answer that stands \
on its own: it is all the other agent gets back."""

# A sub-agent's tool rounds unless its profile says otherwise; then one round without tools.
SUBAGENT_LOOP_CAP = 30
TITLE_CHARS = 120

UPDATABLE_FIELDS = frozenset(
    {
        "title",
        "labels",
        "approval_mode",
        "provider",
        "loop_cap",
        "system_prompt",
        "approval_timeout",
        "approval_rules",
        "profile",
        "mcp_servers",
        "sandbox",
    }
)


@dataclass(frozen=True)
class EngineSettings:
    default_loop_cap: int = 50
    tool_output_limit: int = 256 * 1024
    default_provider: ProviderConfig = field(default_factory=ProviderConfig)
    default_context_window: int = 128_000
    limits: Limits = field(default_factory=Limits)
    profiles_dir: Path | None = None
    # Where sessions' processes run (bash, MCP stdio servers); unconfined without one.
    sandbox: Sandbox = field(default_factory=lambda: Sandbox(None))
    # Sessions of admin callers may use SandboxPolicy.FULL_ACCESS (--allow-full-access).
    allow_full_access: bool = False
    # The API key variables sessions may name, each bound to a host (--provider-key-env);
    # the default provider's own key is added to them.
    provider_keys: ProviderKeys = field(default_factory=ProviderKeys)
    # Workspaces whose profiles' MCP servers start without asking (--trust-workspace).
    trusted_workspaces: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Page:
    items: list[SessionRecord] | list[Message]
    next_page_token: str


@dataclass
class _Live:
    log: EventLog
    tenant: str
    turn: Turn | None = None
    watchers: int = 0
    mcp: McpHub | None = None  # the session's MCP servers, once a turn needed them


@dataclass(frozen=True)
class TurnCommand:
    """A command for a running turn: exactly one of the fields is set."""

    approval: tuple[str, ApprovalAnswer] | None = None
    loop: LoopAnswer | None = None
    cancel: bool = False
    answer: tuple[str, str] | None = None  # (request_id, text) of a user_question


def encode_command(command: TurnCommand) -> str:
    """A command as JSON, for the replica that runs the turn."""
    if command.cancel:
        return json.dumps({"cancel": True})
    if command.loop is not None:
        return json.dumps({"loop": [command.loop.action.value, command.loop.extra_iterations]})
    if command.approval is not None:
        request_id, answer = command.approval
        return json.dumps({"approval": [request_id, answer.decision.value, answer.feedback]})
    if command.answer is not None:
        return json.dumps({"answer": list(command.answer)})
    raise InvalidArgument(
        "command must set approval_decision, loop_decision, user_answer or cancel"
    )


def decode_command(body: str) -> TurnCommand:
    value = json.loads(body)
    if "loop" in value:
        action, extra = value["loop"]
        return TurnCommand(loop=LoopAnswer(LoopAction(action), extra))
    if "approval" in value:
        request_id, decision, feedback = value["approval"]
        return TurnCommand(approval=(request_id, ApprovalAnswer(Decision(decision), feedback)))
    if "answer" in value:
        request_id, text = value["answer"]
        return TurnCommand(answer=(request_id, text))
    return TurnCommand(cancel=True)


# How long a command for a turn on another replica waits for that replica's answer.
COMMAND_TIMEOUT_S = 10.0
_REMOTE_ERRORS: dict[str, type[KodaError]] = {
    cls.__name__: cls for cls in (NotFound, FailedPrecondition, InvalidArgument)
}


class SessionManager:
    """Owns turns (as tasks), event logs and their fan-out; the store owns the data."""

    def __init__(
        self,
        store: Store,
        providers: ProviderRegistry,
        tools: ToolRegistry,
        settings: EngineSettings = EngineSettings(),
        cluster: Cluster | None = None,
    ) -> None:
        self.store = store
        # Set when replicas share the database: leases, remote events and commands.
        self.cluster = cluster
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.providers = providers
        self.tools = tools
        self.settings = settings
        self._writer = EventWriter(store)
        self._live: dict[str, _Live] = {}
        self.profiles = ProfileCatalog(settings.profiles_dir)
        self._keys = settings.provider_keys.with_default(settings.default_provider)
        # Model lists by provider (script and all), with when they were fetched.
        self._models: dict[tuple[str, ...], tuple[float, list[ModelInfo]]] = {}
        # Creating sessions of one tenant one at a time keeps its session limit exact.
        self._creating: dict[str, asyncio.Lock] = {}
        metrics.track(self)

    async def start(self) -> None:
        self._writer.start()
        await self._recover()
        if self.cluster is not None:
            await self.cluster.listen(self)
            self._reaper = asyncio.create_task(self._reap(), name="reaper")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reap(self) -> None:
        """Ends, every half lease period, the turns of replicas that stopped renewing."""
        assert self.cluster is not None
        while True:
            await asyncio.sleep(self.cluster.lease_ttl_s / 2)
            try:
                await self._recover()
            except Exception:
                log.exception("taking over turns of lost replicas failed; retrying")

    # Replicas (kodad.store.base.ReplicaHandler): what the database reports.

    def lease_lost(self, session_id: str) -> None:
        """Another replica took over a session whose turn runs here: its streams end
        (ABORTED) and the turn stops; its writes would be refused anyway."""
        live = self._live.get(session_id)
        if live is not None and live.turn is not None:
            live.log.fence()
            live.turn.cancel()

    def remote_events(self, session_id: str, last_seq: int) -> None:
        """Another replica (or this one) stored events of a session up to `last_seq`."""
        live = self._live.get(session_id)
        if live is not None and live.turn is None and last_seq > live.log.stored_seq:
            self._spawn(live.log.catch_up(self.store))

    def resync(self) -> None:
        for session_id, live in list(self._live.items()):
            if live.turn is None:
                self._spawn(live.log.catch_up(self.store))
            else:
                self._spawn(self.remote_commands(session_id))

    async def remote_commands(self, session_id: str) -> None:
        """Applies the commands other replicas queued for a turn running here."""
        assert self.cluster is not None
        live = self._live.get(session_id)
        turn = live.turn if live is not None else None
        if turn is None:
            return  # not running here: the owner takes them
        for command_id, turn_id, body in await self.cluster.take_commands(session_id):
            code, message = "", ""
            try:
                if turn_id != turn.id:
                    raise FailedPrecondition(
                        f"turn {turn_id} is not running on session {session_id}"
                        f" (running: {turn.id})"
                    )
                self.command(turn, decode_command(body))
            except KodaError as e:
                code = next((n for n, c in _REMOTE_ERRORS.items() if isinstance(e, c)), "")
                code, message = code or "Unavailable", str(e)
            await self.cluster.reply_command(command_id, code, message)

    async def close(self) -> None:
        """Cancels running turns, waits until they are stored, then flushes the event log."""
        for task in (self._reaper, *self._background):
            if task is not None:
                task.cancel()
        turns = [live.turn for live in self._live.values() if live.turn is not None]
        for turn in turns:
            turn.cancel()
        await asyncio.gather(*(t.task for t in turns if t.task is not None), return_exceptions=True)
        for live in self._live.values():
            live.log.close()
        await asyncio.gather(*(live.mcp.aclose() for live in self._live.values() if live.mcp))
        await self._writer.aclose()

    async def _recover(self) -> None:
        """Ends turns a killed process left running, keeping every history valid. With
        replicas: the turns whose owner stopped renewing its lease, each taken over first
        (one replica wins), ended FAILED with error_code owner_lost."""
        unfinished = await self.store.unfinished_turns()
        if unfinished and (killed := kill_orphans({t.turn_id for t in unfinished})):
            log.warning("killed %d command(s) left running by interrupted turns", killed)
        for turn in unfinished:
            record = await self.store.get_session(turn.session_id)
            if record is None:
                continue
            live = await self._live_session(turn.session_id)
            if live.turn is not None:
                continue
            token = 0
            if self.cluster is not None:
                try:
                    token = await self.cluster.acquire_lease(turn.session_id, turn.turn_id)
                except LeaseHeld:
                    continue  # its owner is back, or another replica took it over
                await live.log.catch_up(self.store)
            try:
                await self._end_interrupted(live, turn)
            finally:
                if self.cluster is not None:
                    await self.cluster.release_lease(turn.session_id, token)

    async def _end_interrupted(self, live: _Live, turn: TurnRecord) -> None:
        """Answers the turn's open tool calls and ends it FAILED: `interrupted` (the service
        stopped) or, with replicas, `owner_lost` (the replica running it stopped)."""
        code, why = "interrupted", "the service stopped"
        if self.cluster is not None:
            code, why = "owner_lost", "the replica running the turn stopped"
        text = f"{why} while the turn was running"
        messages = await self.store.list_messages(turn.session_id)
        await self._complete_log(live, turn, messages)
        answered = {m.tool_result.call_id for m in messages if m.tool_result is not None}
        for message in messages:
            for call in message.tool_calls:
                if call.call_id not in answered:
                    result = ToolResult(call.call_id, f"interrupted: {why}", True)
                    await self.store.append_message(
                        turn.session_id, Message(Role.TOOL, turn.turn_id, tool_result=result)
                    )
                    live.log.emit(
                        turn.turn_id,
                        ToolCallFinished(call.call_id, result.output, is_error=True),
                    )
        await self.store.end_turn(
            dataclasses.replace(
                turn,
                end_time=now_us(),
                reason=TurnEndReason.FAILED,
                error_code=code,
                error_message=text,
            )
        )
        live.log.emit(turn.turn_id, TurnEnded(TurnEndReason.FAILED, code, text))
        await live.log.flush()
        log.warning("turn %s of session %s was interrupted", turn.turn_id, turn.session_id)

    async def _complete_log(self, live: _Live, turn: TurnRecord, messages: list[Message]) -> None:
        """Appends the events a crash kept from the log although what they announce was
        stored: a tool_call_finished for each result in the history, a file_changed for each
        recorded change (the store writes those before their events)."""
        payloads = [
            e.payload
            for e in await self._events_of(turn.session_id)
            if e.turn_id == turn.turn_id and not e.subagent_session_id
        ]
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
        changes = await self.store.list_file_changes(
            turn.session_id, turn_id=turn.turn_id, after=0, limit=100_000
        )
        for _, change in changes:
            if announced[(change.path, change.change)] > 0:
                announced[(change.path, change.change)] -= 1
            else:
                live.log.emit(turn.turn_id, FileChanged(change.path, change.change))

    async def _events_of(self, session_id: str) -> list[Event]:
        """Every stored event of a session, in order (for recovery only)."""
        events: list[Event] = []
        while page := await self.store.list_events(
            session_id, after_seq=events[-1].seq if events else 0, limit=1000
        ):
            events += page
        return events

    async def _live_session(self, session_id: str) -> _Live:
        live = self._live.get(session_id)
        if live is not None:
            return live
        record = await self._record(session_id)
        live = self._live.get(session_id)  # another task may have loaded it meanwhile
        if live is None:
            live = _Live(EventLog(session_id, record.last_seq, self._writer), record.tenant)
            self._live[session_id] = live
        return live

    async def _record(self, session_id: str, caller: Caller = LOCAL) -> SessionRecord:
        """The stored session, if `caller` may see it (another tenant's is NOT_FOUND too)."""
        if not session_id:
            raise InvalidArgument("session_id is required")
        record = await self.store.get_session(session_id)
        if record is None or not caller.sees(record.tenant):
            raise NotFound(f"session {session_id} not found")
        return record

    async def _visible_live(self, session_id: str, caller: Caller) -> _Live:
        """The live session, if `caller` may see it."""
        live = await self._live_session(session_id)
        if not caller.sees(live.tenant):
            raise NotFound(f"session {session_id} not found")
        return live

    def live_sessions(self) -> int:
        return len(self._live)

    def approvals_waiting(self) -> int:
        # A sub-agent's turn shares its parent's requests: count each set once.
        turns = [live.turn for live in self._live.values() if live.turn is not None]
        return sum(len(p) for p in {id(t.pending): t.pending for t in turns}.values())

    def running_turns(self, tenant: str | None = None) -> int:
        """Turns running now, of `tenant` (all when None)."""
        return sum(
            1
            for live in self._live.values()
            if live.turn is not None and (tenant is None or live.tenant == tenant)
        )

    def _running_turn_id(self, record: SessionRecord) -> str:
        """The turn running on the session: here, or (with replicas) on another replica."""
        live = self._live.get(record.id)
        if live is not None and live.turn is not None:
            return live.turn.id
        return record.active_turn_id if self.cluster is not None else ""

    def _view(self, record: SessionRecord) -> SessionRecord:
        live = self._live.get(record.id)
        if live is not None and live.turn is not None:  # else the stored record is current
            record.last_seq = max(record.last_seq, live.log.stored_seq)
            record.active_turn_id = live.turn.id
        return record

    # Sessions

    async def create_session(
        self, spec: SessionRecord, *, default_provider: bool = False, caller: Caller = LOCAL
    ) -> SessionRecord:
        """Creates a session of `caller`'s tenant from the client-settable fields of `spec`;
        with `default_provider` it gets the server's provider instead of `spec.provider`."""
        workspace = validation.workspace(spec.workspace)
        caller.check_workspace(workspace)
        profile = self.profiles.get(spec.profile, workspace).name
        created = now_us()
        provider = self.settings.default_provider if default_provider else spec.provider
        record = SessionRecord(
            id=new_id("s"),
            workspace=workspace,
            title=validation.title(spec.title),
            provider=validation.provider(provider),
            approval_mode=spec.approval_mode,
            loop_cap=validation.loop_cap(spec.loop_cap),
            system_prompt=validation.system_prompt(spec.system_prompt),
            labels=validation.labels(spec.labels),
            approval_timeout_ms=validation.approval_timeout_ms(spec.approval_timeout_ms),
            approval_rules=validation.approval_rules(spec.approval_rules, self.tools.names),
            create_time=created,
            update_time=created,
            tenant=caller.tenant,
            profile=profile,
            mcp_servers=validation.mcp_servers(spec.mcp_servers),
            sandbox=self._sandbox(spec.sandbox, caller),
        )
        self._keys.check(record.provider)
        async with self._creating_lock(caller.tenant):
            await self._check_session_limit(caller.tenant)
            await self.store.create_session(record)
        return record

    def _creating_lock(self, tenant: str) -> asyncio.Lock:
        """Held from counting a tenant's sessions to storing a new one, so concurrent
        creates cannot all pass the limit (within this replica)."""
        return self._creating.setdefault(tenant, asyncio.Lock())

    def _sandbox(self, sandbox: SandboxSettings, caller: Caller) -> SandboxSettings:
        """PermissionDenied for FULL_ACCESS unless an admin asks on a server allowing it."""
        if sandbox.policy is SandboxPolicy.FULL_ACCESS:
            if not self.settings.allow_full_access:
                raise PermissionDenied(
                    "session.sandbox.policy FULL_ACCESS is not allowed on this server (start "
                    "it with --allow-full-access)"
                )
            if not caller.admin:
                raise PermissionDenied("session.sandbox.policy FULL_ACCESS needs an admin caller")
        return sandbox

    async def _check_session_limit(self, tenant: str) -> None:
        limit = self.settings.limits.sessions_per_tenant
        if limit and await self.store.count_sessions(tenant) >= limit:
            raise ResourceExhausted(
                f"the tenant has {limit} sessions, the sessions_per_tenant limit; delete some"
            )

    # Models

    async def list_models(
        self, provider: ProviderConfig | None, session_id: str, *, caller: Caller
    ) -> list[ModelInfo]:
        """The models of `provider` (else the session's, else the server's default), from a
        cache of MODELS_TTL_S seconds per provider."""
        if provider is None:
            if session_id:
                provider = (await self._record(session_id, caller)).provider
            else:
                provider = self.settings.default_provider
        config = validation.provider(provider)
        self._keys.check(config)
        key = _models_key(config)
        cached = self._models.get(key)
        if cached is not None and time.monotonic() - cached[0] < MODELS_TTL_S:
            return cached[1]
        try:
            models = await self.providers.get(config).list_models()
        except ProviderError as e:
            if e.code == "auth":
                raise FailedPrecondition(f"the provider refused the key: {e.message}") from None
            raise Unavailable(f"the provider could not list its models: {e.message}") from None
        if len(self._models) > 256:
            self._models.clear()
        self._models[key] = (time.monotonic(), models)
        return models

    def _known_window(self, provider: ProviderConfig) -> int:
        """The model's context window, when a model list seen lately states it."""
        cached = self._models.get(_models_key(provider))
        if cached is None:
            return 0
        return next((m.context_window_tokens for m in cached[1] if m.id == provider.model), 0)

    async def get_session(self, session_id: str, *, caller: Caller = LOCAL) -> SessionRecord:
        return self._view(await self._record(session_id, caller))

    async def list_sessions(
        self,
        *,
        page_size: int,
        page_token: str,
        labels: Mapping[str, str],
        caller: Caller = LOCAL,
    ) -> tuple[list[SessionRecord], str]:
        size = validation.page_size(page_size)
        labels = validation.label_filter(labels)
        scope = "sessions:" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        before = validation.decode_page_token(page_token, scope)
        records = await self.store.list_sessions(
            limit=size + 1,
            before_id=None if before is None else str(before),
            labels=labels,
            tenant=None if caller.admin else caller.tenant,
        )
        token = ""
        if len(records) > size:
            records = records[:size]
            token = validation.encode_page_token(records[-1].id, scope)
        return [self._view(r) for r in records], token

    async def update_session(
        self, changes: SessionRecord, paths: list[str], *, caller: Caller = LOCAL
    ) -> SessionRecord:
        if not paths:
            raise InvalidArgument("update_mask must name at least one field")
        unknown = sorted(set(paths) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidArgument(
                f"update_mask paths {unknown} cannot be updated; allowed: "
                + ", ".join(sorted(UPDATABLE_FIELDS))
            )
        record = await self._record(changes.id, caller)
        if "title" in paths:
            record.title = validation.title(changes.title)
        if "labels" in paths:
            record.labels = validation.labels(changes.labels)
        if "approval_mode" in paths:
            record.approval_mode = changes.approval_mode
        if "provider" in paths:
            record.provider = validation.provider(changes.provider)
            self._keys.check(record.provider)
        if "loop_cap" in paths:
            record.loop_cap = validation.loop_cap(changes.loop_cap)
        if "system_prompt" in paths:
            record.system_prompt = validation.system_prompt(changes.system_prompt)
        if "approval_timeout" in paths:
            record.approval_timeout_ms = validation.approval_timeout_ms(changes.approval_timeout_ms)
        if "approval_rules" in paths:
            record.approval_rules = validation.approval_rules(
                changes.approval_rules, self.tools.names
            )
        if "profile" in paths:
            record.profile = self.profiles.get(changes.profile, record.workspace).name
        if "mcp_servers" in paths:
            record.mcp_servers = validation.mcp_servers(changes.mcp_servers)
        if "sandbox" in paths:
            record.sandbox = self._sandbox(changes.sandbox, caller)
        record.update_time = now_us()
        await self.store.update_session(record)
        return self._view(record)

    async def delete_session(self, session_id: str, *, caller: Caller = LOCAL) -> None:
        record = await self._record(session_id, caller)
        live = self._live.get(session_id)
        if running := self._running_turn_id(record):
            raise FailedPrecondition(
                f"session {session_id} is running turn {running}; cancel it first"
            )
        if live is not None:
            await live.log.flush()
        if not await self.store.delete_session(session_id):
            raise NotFound(f"session {session_id} not found")
        live = self._live.pop(session_id, None)
        if live is not None:
            live.log.close()
            if live.mcp is not None:
                await live.mcp.aclose()

    async def fork_session(
        self, session_id: str, title: str, *, caller: Caller = LOCAL
    ) -> SessionRecord:
        source = await self._record(session_id, caller)
        if running := self._running_turn_id(source):
            raise FailedPrecondition(
                f"session {session_id} is running turn {running}; fork it when idle"
            )
        created = now_us()
        record = dataclasses.replace(
            source.copy(),
            id=new_id("s"),
            title=validation.title(title or f"{source.title or source.id} (fork)"),
            create_time=created,
            update_time=created,
            last_seq=0,
            active_turn_id="",
            parent_session_id="",
        )
        async with self._creating_lock(record.tenant):
            await self._check_session_limit(record.tenant)
            await self.store.fork_session(session_id, record)
        return record

    async def list_messages(
        self, session_id: str, *, page_size: int, page_token: str, caller: Caller = LOCAL
    ) -> tuple[list[Message], str]:
        size = validation.page_size(page_size)
        await self._record(session_id, caller)
        scope = f"messages:{session_id}"
        after = validation.decode_page_token(page_token, scope)
        messages = await self.store.list_messages(
            session_id, after_index=int(after or 0), limit=size + 1
        )
        token = ""
        if len(messages) > size:
            messages = messages[:size]
            token = validation.encode_page_token(messages[-1].index, scope)
        return messages, token

    async def list_file_changes(
        self,
        session_id: str,
        *,
        turn_id: str,
        page_size: int,
        page_token: str,
        caller: Caller = LOCAL,
    ) -> tuple[list[FileChange], str]:
        size = validation.page_size(page_size)
        await self._record(session_id, caller)
        scope = f"files:{session_id}:{turn_id}"
        after = validation.decode_page_token(page_token, scope)
        rows = await self.store.list_file_changes(
            session_id, turn_id=turn_id, after=int(after or 0), limit=size + 1
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = validation.encode_page_token(rows[-1][0], scope)
        return [change for _, change in rows], token

    # Turns

    async def start_turn(
        self, session_id: str, turn_input: TurnInput, *, caller: Caller = LOCAL
    ) -> Turn:
        """Starts a turn; its first event (turn_started) has seq `turn.started_seq`."""
        if not turn_input.compact:
            validation.turn_input(turn_input.text, turn_input.images)
        limits = self.settings.limits
        size = len(turn_input.text.encode()) + sum(len(i.data) for i in turn_input.images)
        if limits.input_bytes and size > limits.input_bytes:
            raise ResourceExhausted(
                f"start_turn.text and images are {size} bytes, over the input_bytes limit"
                f" ({limits.input_bytes})"
            )
        record = await self._record(session_id, caller)
        # Again at every turn: a workspace swapped for a symlink since must not escape, and
        # keys the operator no longer lends (or a session stored before they were checked).
        caller.check_workspace(record.workspace)
        self._keys.check(record.provider)
        profile = self.profiles.get(record.profile, record.workspace)
        live = await self._live_session(session_id)
        self._check_can_start(live)
        mcp_tools: list[Tool] = []
        notices: list[str] = []
        deferred: WorkspaceServers | None = None
        if not turn_input.compact:
            mcp_tools, notices, deferred = await self._mcp_tools(live, record, profile)
        turn_id = new_id("t")
        token = await self._lease(live, turn_id)
        self._check_can_start(live)
        # No await from the check above to `live.turn = turn`: a concurrent start sees it.
        loop_cap = record.loop_cap or profile.loop_cap or self.settings.default_loop_cap
        tools = self.tools.with_tools(mcp_tools)
        return self._launch(
            live,
            record,
            profile,
            turn_input,
            loop_cap,
            tools,
            turn_id,
            token,
            notices=notices,
            workspace_servers=deferred,
        )

    async def _lease(self, live: _Live, turn_id: str) -> int:
        """With replicas: takes the session's lease for `turn_id` (FAILED_PRECONDITION
        naming the replica that runs a turn there) and continues its event log where the
        other replicas left it. Returns the fencing token (0 without replicas)."""
        if self.cluster is None:
            return 0
        session_id = live.log.session_id
        try:
            token = await self.cluster.acquire_lease(session_id, turn_id)
        except LeaseHeld as e:
            raise FailedPrecondition(str(e)) from None
        await live.log.catch_up(self.store)
        record = await self.store.get_session(session_id)
        if live.turn is None and record is not None and record.active_turn_id:
            # A turn of this replica's name before a restart, whose lease had not expired.
            orphan = TurnRecord(session_id, record.active_turn_id, record.update_time)
            await self._end_interrupted(live, orphan)
        return token

    async def _release_after(self, turn: Turn, token: int) -> None:
        """Gives the session's lease up once the turn's end is stored."""
        assert self.cluster is not None and turn.task is not None
        await asyncio.wait({turn.task})
        await self.cluster.release_lease(turn.session.id, token)

    def _check_can_start(self, live: _Live) -> None:
        """Raises unless a turn may start on the session now."""
        limits = self.settings.limits
        if live.turn is not None:
            raise TurnAlreadyRunning(live.log.session_id, live.turn.id)
        if limits.turns and self.running_turns() >= limits.turns:
            raise ResourceExhausted(
                f"{limits.turns} turns are running, the turns limit; retry later"
            )
        if limits.turns_per_tenant and self.running_turns(live.tenant) >= limits.turns_per_tenant:
            raise ResourceExhausted(
                f"the tenant runs {limits.turns_per_tenant} turns, the turns_per_tenant limit;"
                " retry later"
            )

    async def _mcp_tools(
        self, live: _Live, record: SessionRecord, profile: AgentProfile
    ) -> tuple[list[Tool], list[str], WorkspaceServers | None]:
        """The tools of the MCP servers of `record` and `profile` (the session's win on a
        name), started as needed in the session's hub; warnings for those that failed; and
        the servers a workspace's profile declares that wait for approval (asked by the
        turn in CONFIRM; refused in READ_ONLY; started unasked in AUTO or on a workspace
        the operator trusts)."""
        specs = {s.name: s for s in (*profile.mcp_servers, *record.mcp_servers)}
        if not specs:
            return [], [], None
        if live.mcp is None:
            live.mcp = McpHub(record.workspace, self.settings.sandbox, record.sandbox)
        hub = live.mcp
        hub.settings = record.sandbox  # a changed policy restarts the servers
        ready, waiting, notices = [], [], []
        trusted = self._trusted_workspace(record.workspace)
        for spec in specs.values():
            if (
                not spec.from_workspace
                or trusted
                or spec in hub.approved
                or record.approval_mode is ApprovalMode.AUTO
            ):
                ready.append(spec)
            elif record.approval_mode is ApprovalMode.READ_ONLY:
                notices.append(
                    f"MCP server {spec.name!r} is declared by the workspace and was not "
                    "started: the session is in read-only mode"
                )
            else:
                waiting.append(spec)
        tools, problems = await hub.tools(ready) if ready else ([], [])

        async def start(approved: list[McpServerSpec]) -> tuple[list[Tool], list[str]]:
            hub.approved.update(approved)
            started, failed = await hub.tools(approved)
            return list(started), failed

        deferred = WorkspaceServers(tuple(waiting), start) if waiting else None
        return list(tools), [*notices, *problems], deferred

    def _trusted_workspace(self, workspace: str) -> bool:
        real = Path(workspace).resolve()
        return any(real.is_relative_to(Path(t).resolve()) for t in self.settings.trusted_workspaces)

    def _launch(
        self,
        live: _Live,
        record: SessionRecord,
        profile: AgentProfile,
        turn_input: TurnInput,
        loop_cap: int,
        tools: ToolRegistry,
        turn_id: str,
        token: int,
        *,
        relay: Relay | None = None,
        pending: PendingRequests | None = None,
        notices: list[str] | None = None,
        workspace_servers: WorkspaceServers | None = None,
    ) -> Turn:
        """Starts a turn of `record` as `profile` (a sub-agent's with `relay` and `pending`)."""
        tools = tools.restricted(profile.allows, f"the agent profile {profile.name!r}")
        agents = self.profiles.all(record.workspace) if tools.get("invoke_agent") else []
        limits = TurnLimits(
            loop_cap=loop_cap,
            tool_output_limit=self.settings.tool_output_limit,
            system_prompt=self._system_prompt(record, profile, agents),
            context_window=self._known_window(record.provider)
            or self.settings.default_context_window,
            final_round=relay is not None,
        )
        if profile.model:
            record.provider = dataclasses.replace(record.provider, model=profile.model)

        def finished(turn: Turn) -> None:
            if live.turn is turn:
                live.turn = None

        turn = Turn(
            turn_id=turn_id,
            session=record,
            turn_input=turn_input,
            log=live.log,
            store=self.store,
            provider=self.providers.get(record.provider),
            tools=tools,
            limits=limits,
            on_finished=finished,
            subagents=self._run_subagent if relay is None else None,
            relay=relay,
            pending=pending,
            notices=notices or [],
            workspace_servers=workspace_servers,
        )
        live.turn = turn
        turn.start()
        if self.cluster is not None:
            self._spawn(self._release_after(turn, token))
        return turn

    async def _run_subagent(self, parent: Turn, call_id: str, agent: str, task: str) -> ToolOutcome:
        """Runs `task` as a child session of `parent`'s with the profile `agent`, to its end;
        its events reach the parent's log tagged with the child session and `call_id`, its
        questions are answered through the parent. Cancelling the parent cancels it."""
        source = parent.session
        try:
            profile = self.profiles.get(agent, source.workspace)
        except KodaError as e:
            names = ", ".join(p.name for p in self.profiles.all(source.workspace))
            raise ToolError(f"{e}; agents: {names}") from None
        created = now_us()
        first_line = task.splitlines()[0] if task else ""
        record = SessionRecord(
            id=new_id("s"),
            workspace=source.workspace,
            title=validation.title(f"{profile.name}: {first_line}"[:TITLE_CHARS]),
            provider=source.provider,
            approval_mode=source.approval_mode,
            approval_timeout_ms=source.approval_timeout_ms,
            approval_rules=source.approval_rules,
            create_time=created,
            update_time=created,
            tenant=source.tenant,
            profile=profile.name,
            parent_session_id=source.id,
            sandbox=source.sandbox,  # never more than its parent may do
        )
        await self.store.create_session(record)
        live = await self._live_session(record.id)
        parent_live = await self._live_session(source.id)
        parent_log = parent_live.log
        # The parent's MCP servers (its session's and the sub-agent profile's), in its hub.
        mcp_tools, notices, deferred = await self._mcp_tools(parent_live, source, profile)
        turn_id = new_id("t")
        token = await self._lease(live, turn_id)

        def relay(payload: EventPayload) -> Event:
            return parent_log.emit(
                parent.id, payload, subagent_session_id=record.id, parent_call_id=call_id
            )

        child = self._launch(
            live,
            record,
            profile,
            TurnInput(task),
            profile.loop_cap or SUBAGENT_LOOP_CAP,
            self.tools.with_tools(mcp_tools).restricted(
                lambda name: name != "invoke_agent", "a sub-agent"
            ),
            turn_id,
            token,
            relay=relay,
            pending=parent.pending,
            notices=notices,
            workspace_servers=deferred,
        )
        assert child.task is not None
        try:
            await asyncio.shield(child.task)
        except asyncio.CancelledError:
            child.cancel()
            await asyncio.wait({child.task})
            raise
        code, message = child.error
        match child.end_reason:
            case TurnEndReason.COMPLETED:
                return ToolOutcome(child.answer or "(the sub-agent ended without an answer)")
            case TurnEndReason.STOPPED_AT_LOOP_CAP:
                return ToolOutcome(
                    f"(the sub-agent used up its tool budget) {child.answer}".rstrip(), True
                )
            case TurnEndReason.CANCELLED:
                return ToolOutcome("the sub-agent's turn was cancelled", True)
            case _:
                return ToolOutcome(f"the sub-agent failed: {code}: {message}", True)

    async def compact_session(self, session_id: str, *, caller: Caller = LOCAL) -> tuple[str, int]:
        """Summarises all but the session's last turn now, as a turn of its own (its events
        show it). Returns the turn id and the last message index summarised (0: none)."""
        turn = await self.start_turn(session_id, TurnInput("", compact=True), caller=caller)
        if turn.task is not None:
            await asyncio.shield(turn.task)
        messages = await self.store.list_messages(session_id)
        summaries = [m for m in messages if m.role is Role.SUMMARY and m.turn_id == turn.id]
        return turn.id, summaries[-1].summarized_through if summaries else 0

    async def follow_turn(self, turn: Turn) -> AsyncIterator[Event]:
        """Every event of `turn`, from turn_started to turn_ended."""
        live = await self._live_session(turn.session.id)
        async for event in live.log.follow(self.store, turn.started_seq - 1):
            yield event
            if event.turn_id == turn.id and isinstance(event.payload, TurnEnded):
                return
        if live.log.fenced:
            raise Aborted(
                f"another replica took session {turn.session.id} over (this one stopped renewing"
                " its lease); WatchSession on any replica shows how the turn ended"
            )

    @staticmethod
    def _system_prompt(
        record: SessionRecord, profile: AgentProfile, agents: list[AgentProfile]
    ) -> str:
        """The base prompt, the profile's and session's, the `agents` invoke_agent may run
        (none: it is not offered) and the memory files."""
        prompt = BASE_SYSTEM_PROMPT.format(workspace=record.workspace)
        if record.parent_session_id:
            prompt += "\n\n" + SUBAGENT_PROMPT
        for extra in (profile.system_prompt, record.system_prompt):
            if extra:
                prompt += "\n\n" + extra
        if agents:
            prompt += "\n\nAgents you can delegate to with invoke_agent:\n" + "\n".join(
                f"- {a.name}: {a.description or 'no description'}" for a in agents
            )
        if profile.memory and (memory := memory_prompt(record.workspace, record.tenant)):
            prompt += "\n\n" + memory
        return prompt

    async def submit_command(
        self, session_id: str, turn_id: str, command: TurnCommand, *, caller: Caller = LOCAL
    ) -> str:
        """Delivers a command to the session's running turn, on whichever replica runs it;
        returns the turn's id."""
        live = await self._visible_live(session_id, caller)
        if live.turn is not None or self.cluster is None:
            turn = await self.running_turn(session_id, turn_id, caller=caller)
            self.command(turn, command)
            return turn.id
        record = await self._record(session_id, caller)
        running = record.active_turn_id
        if not running:
            raise FailedPrecondition(f"session {session_id} has no running turn")
        if turn_id and turn_id != running:
            raise FailedPrecondition(
                f"turn {turn_id} is not running on session {session_id} (running: {running})"
            )
        code, message = await self.cluster.send_command(
            session_id, running, encode_command(command), COMMAND_TIMEOUT_S
        )
        if code:
            raise _REMOTE_ERRORS.get(code, Unavailable)(message)
        return running

    async def running_turn(
        self, session_id: str, turn_id: str = "", *, caller: Caller = LOCAL
    ) -> Turn:
        if not session_id:
            raise InvalidArgument("session_id is required")
        live = await self._visible_live(session_id, caller)
        turn = live.turn
        if turn is None:
            raise FailedPrecondition(f"session {session_id} has no running turn")
        if turn_id and turn.id != turn_id:
            raise FailedPrecondition(
                f"turn {turn_id} is not running on session {session_id} (running: {turn.id})"
            )
        return turn

    def stream_command(self, turn: Turn, command: TurnCommand | KodaError) -> None:
        """A command from the turn's own RunTurn stream: one that cannot apply becomes a
        warning notice instead of ending the stream."""
        try:
            if isinstance(command, KodaError):
                raise command
            self.command(turn, command)
        except KodaError as e:
            live = self._live.get(turn.session.id)
            if live is not None and live.turn is turn:
                live.log.emit(turn.id, Notice(NoticeLevel.WARNING, f"command ignored: {e}"))

    @staticmethod
    def command(turn: Turn, command: TurnCommand) -> None:
        """Delivers a command to a running turn."""
        if command.cancel:
            turn.cancel()
        elif command.loop is not None:
            request = turn.pending.of_kind("loop")
            if request is None:
                raise FailedPrecondition(f"turn {turn.id} is not waiting for a loop decision")
            turn.pending.answer(request.request_id, "loop", command.loop)
        elif command.approval is not None:
            request_id, answer = command.approval
            turn.pending.answer(request_id, "approval", answer)
        elif command.answer is not None:
            request_id, text = command.answer
            turn.pending.answer(request_id, "question", text)
        else:
            raise InvalidArgument(
                "command must set approval_decision, loop_decision, user_answer or cancel"
            )

    async def watch(
        self, session_id: str, after_seq: int, *, caller: Caller = LOCAL
    ) -> AsyncIterator[Event]:
        """Stored events after `after_seq`, then live ones, without gaps or repeats."""
        if after_seq < 0:
            raise InvalidArgument(f"after_seq must not be negative, got {after_seq}")
        if not session_id:
            raise InvalidArgument("session_id is required")
        live = await self._visible_live(session_id, caller)
        if self.cluster is not None and live.turn is None:
            await live.log.catch_up(self.store)  # what other replicas stored since
        if after_seq > live.log.assigned_seq:
            raise OutOfRange(
                f"after_seq {after_seq} is beyond the last event of session {session_id} "
                f"({live.log.assigned_seq})"
            )
        limit = self.settings.limits.watchers_per_session
        if limit and live.watchers >= limit:
            raise ResourceExhausted(
                f"session {session_id} has {limit} watchers, the watchers_per_session limit"
            )
        live.watchers += 1
        try:
            # Open questions asked before `after_seq` first, so a late client can answer.
            asked_before: list[Event] = []
            if live.turn is not None:
                asked_before = live.turn.pending.events(session_id)
            elif self.cluster is not None:  # a turn on another replica: from the log
                record = await self._record(session_id, caller)
                if record.active_turn_id:
                    asked_before = await self.cluster.open_requests(
                        session_id, record.active_turn_id
                    )
            for asked in asked_before:
                if asked.seq <= after_seq:
                    yield asked
            async for event in live.log.follow(self.store, after_seq):
                yield event
        finally:
            live.watchers -= 1
