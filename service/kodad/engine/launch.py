"""Starting turns: the checks, the session's lease, its MCP servers, and the Turn itself."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import Aborted, FailedPrecondition, TurnAlreadyRunning
from kodad.domain.events import Event, TurnEnded
from kodad.domain.ids import new_id
from kodad.domain.model import ApprovalMode, McpServerSpec, Role, SessionRecord
from kodad.engine import output, prompts, recovery, validation
from kodad.engine.budget import Budget, check_limits
from kodad.engine.gate import WorkspaceServers
from kodad.engine.inputs import Relay, SubagentRunner, TurnDeps, TurnInput, TurnLimits
from kodad.engine.live import Core, LiveSession
from kodad.engine.models import Models
from kodad.engine.pending import PendingRequests
from kodad.engine.profiles import AgentProfile
from kodad.engine.turn import Turn
from kodad.store.base import LeaseHeld, TurnRecord
from kodad.tools import Tool, ToolRegistry
from kodad.tools.mcp import McpHub

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Launch:
    """What a turn is launched with, besides its session and input."""

    profile: AgentProfile
    loop_cap: int
    tools: ToolRegistry
    turn_id: str
    token: int  # the lease's fencing token (0 without replicas)
    notices: tuple[str, ...] = ()
    workspace_servers: WorkspaceServers | None = None
    # A sub-agent's: its events relayed into the parent's log, the parent's questions.
    relay: Relay | None = None
    pending: PendingRequests | None = None


def title_of(text: str, limit: int = 60) -> str:
    """A session's title from its first prompt: the first line, cut at a word."""
    line = " ".join(text.strip().splitlines()[0].split())
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut + "…"


def budget(turn_input: TurnInput, record: SessionRecord) -> Budget:
    """What a turn of `record` may spend."""
    session = record if record.token_budget or record.cost_budget else None
    return Budget(turn_input.max_total_tokens, turn_input.max_cost, session)


class Launcher:
    def __init__(self, core: Core, models: Models) -> None:
        self._core = core
        self._models = models
        # Runs invoke_agent's sub-agents (set by the engine once it has built them).
        self.subagents: SubagentRunner | None = None
        # Called once a session's own turn is over (its end stored, its lease released).
        self.after_turn: Callable[[Turn], Awaitable[None]] | None = None

    def check_input(self, turn_input: TurnInput) -> None:
        """INVALID_ARGUMENT or RESOURCE_EXHAUSTED for an input no turn may start with."""
        if not turn_input.compact:
            validation.turn_input(turn_input.text, turn_input.images)
        if turn_input.output_schema:
            output.parse_schema(turn_input.output_schema)
        check_limits(turn_input.max_total_tokens, turn_input.max_cost, "start_turn")
        limits = self._core.settings.limits
        size = len(turn_input.text.encode()) + sum(len(i.data) for i in turn_input.images)
        if limits.input_bytes and size > limits.input_bytes:
            raise errors.limit_reached(
                "input_bytes",
                limits.input_bytes,
                f"start_turn.text and images are {size} bytes, over the input_bytes limit"
                f" ({limits.input_bytes})",
            )

    async def start_turn(
        self, session_id: str, turn_input: TurnInput, *, caller: Caller, turn_id: str = ""
    ) -> Turn:
        """Starts a turn (under `turn_id` when it was queued as that); its first event
        (turn_started) has seq `turn.started_seq`."""
        core = self._core
        self.check_input(turn_input)
        record = await core.live.record(session_id, caller)
        # Again at every turn: a workspace swapped for a symlink since must not escape, and
        # keys the operator no longer lends (or a session stored before they were checked).
        caller.check_workspace(record.workspace)
        core.keys.check(record.provider)
        profile = core.profiles.get(record.profile, record.workspace)
        model = profile.model or record.provider.model
        budget(turn_input, record).check_start(core.settings.prices, model)
        live = await core.live.load(session_id, record)
        self.check_can_start(live)
        mcp_tools: list[Tool] = []
        notices: list[str] = []
        deferred: WorkspaceServers | None = None
        if not turn_input.compact:
            mcp_tools, notices, deferred = await self.mcp_tools(live, record, profile)
            if not record.title and turn_input.text.strip():  # named after its first prompt
                record.title = title_of(turn_input.text)  # stored with the turn's start
        turn_id = turn_id or new_id("t")
        token = await self.lease(live, turn_id)
        self.check_can_start(live)
        # No await from the check above to `live.turn = turn`: a concurrent start sees it.
        loop_cap = record.loop_cap or profile.loop_cap or core.settings.default_loop_cap
        launch = Launch(
            profile,
            loop_cap,
            core.tools.with_tools(mcp_tools),
            turn_id,
            token,
            tuple(notices),
            deferred,
        )
        return self.launch(live, record, turn_input, launch)

    async def lease(self, live: LiveSession, turn_id: str) -> int:
        """With replicas: takes the session's lease for `turn_id` (FAILED_PRECONDITION
        naming the replica that runs a turn there) and continues its event log where the
        other replicas left it. Returns the fencing token (0 without replicas)."""
        core = self._core
        if core.cluster is None:
            return 0
        session_id = live.log.session_id
        try:
            token = await core.cluster.acquire_lease(session_id, turn_id)
        except LeaseHeld as e:  # a turn runs on another replica
            raise TurnAlreadyRunning(session_id, e.turn_id, str(e)) from None
        await live.log.catch_up(core.store)
        record = await core.store.get_session(session_id)
        if live.turn is None and record is not None and record.active_turn_id:
            # A turn of this replica's name before a restart, whose lease had not expired.
            orphan = TurnRecord(session_id, record.active_turn_id, record.update_time)
            await recovery.end_interrupted(core, live, orphan)
        return token

    async def _after(self, turn: Turn, token: int) -> None:
        """Once the turn's end is stored: gives the session's lease up (with replicas),
        then lets the session's queue go on."""
        assert turn.task is not None
        await asyncio.wait({turn.task})
        if self._core.cluster is not None:
            await self._core.cluster.release_lease(turn.session.id, token)
        if self.after_turn is not None and not self._core.closing:
            try:
                await self.after_turn(turn)
            except Exception:
                if not self._core.closing:  # else the store may be gone already
                    log.exception("after turn %s of session %s", turn.id, turn.session.id)

    def check_can_start(self, live: LiveSession) -> None:
        """Raises unless a turn may start on the session now."""
        limits = self._core.settings.limits
        running = self._core.live.running_turns
        if live.turn is not None:
            raise TurnAlreadyRunning(live.log.session_id, live.turn.id)
        if live.held:
            raise FailedPrecondition(
                f"session {live.log.session_id} is being changed (a rewind); retry"
            )
        if limits.turns and running() >= limits.turns:
            raise errors.limit_reached(
                "turns",
                limits.turns,
                f"{limits.turns} turns are running, the turns limit; retry later",
            )
        if limits.turns_per_tenant and running(live.tenant) >= limits.turns_per_tenant:
            raise errors.limit_reached(
                "turns_per_tenant",
                limits.turns_per_tenant,
                f"the tenant runs {limits.turns_per_tenant} turns, the turns_per_tenant limit;"
                " retry later",
            )

    async def mcp_tools(
        self, live: LiveSession, record: SessionRecord, profile: AgentProfile
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
            live.mcp = McpHub(record.workspace, self._core.settings.sandbox, record.sandbox)
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
        trusted = self._core.settings.trusted_workspaces
        return any(real.is_relative_to(Path(t).resolve()) for t in trusted)

    def launch(
        self, live: LiveSession, record: SessionRecord, turn_input: TurnInput, launch: Launch
    ) -> Turn:
        """Starts a turn of `record` as `launch.profile` (a sub-agent's with a relay)."""
        core = self._core
        profile = launch.profile
        tools = launch.tools.restricted(profile.allows, f"the agent profile {profile.name!r}")
        agents = core.profiles.all(record.workspace) if tools.get("invoke_agent") else []
        limits = TurnLimits(
            loop_cap=launch.loop_cap,
            tool_output_limit=core.settings.tool_output_limit,
            tool_stream_limit=core.settings.tool_stream_limit,
            system_prompt=prompts.system_prompt(record, profile, agents),
            context_window=self._models.known_window(record.provider)
            or core.settings.default_context_window,
            final_round=launch.relay is not None,
            budget=budget(turn_input, record),
            prices=core.settings.prices,
        )
        if profile.model:
            record.provider = dataclasses.replace(record.provider, model=profile.model)

        def finished(turn_id: str) -> None:
            if live.turn is not None and live.turn.id == turn_id:
                live.turn = None

        deps = TurnDeps(
            log=live.log,
            store=core.store,
            provider=core.providers.get(record.provider),
            tools=tools,
            limits=limits,
            on_finished=finished,
            subagents=self.subagents if launch.relay is None else None,
            relay=launch.relay,
            pending=launch.pending,
            notices=launch.notices,
            workspace_servers=launch.workspace_servers,
            history=core.live.history(live, record),
            snapshots=core.snapshots if launch.relay is None and not turn_input.compact else None,
            keep_history=lambda history: core.live.keep_history(live, history),
        )
        turn = Turn(launch.turn_id, record, turn_input, deps)
        live.turn = turn
        live.last_turn_id = turn.id
        turn.start()
        core.spawn(self._after(turn, launch.token))
        return turn

    async def compact_session(self, session_id: str, *, caller: Caller) -> tuple[str, int]:
        """Summarises all but the session's last turn now, as a turn of its own (its events
        show it). Returns the turn id and the last message index summarised (0: none)."""
        turn = await self.start_turn(session_id, TurnInput("", compact=True), caller=caller)
        if turn.task is not None:
            await asyncio.shield(turn.task)
        messages = await self._core.store.list_messages(session_id)
        summaries = [m for m in messages if m.role is Role.SUMMARY and m.turn_id == turn.id]
        return turn.id, summaries[-1].summarized_through if summaries else 0

    async def follow_turn(self, turn: Turn) -> AsyncIterator[Event]:
        """Every event of `turn`, from turn_started to turn_ended."""
        core = self._core
        live = await core.live.load(turn.session.id)
        async for event in live.log.follow(core.store, turn.started_seq - 1):
            yield event
            if event.turn_id == turn.id and isinstance(event.payload, TurnEnded):
                return
        if live.log.fenced:
            raise Aborted(
                f"another replica took session {turn.session.id} over (this one stopped renewing"
                " its lease); WatchSession on any replica shows how the turn ended",
                reason=errors.LEASE_LOST,
                metadata={"session_id": turn.session.id},
            )
