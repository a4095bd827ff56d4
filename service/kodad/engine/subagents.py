"""Sub-agents: a turn's invoke_agent call run as a child session, to its end."""

from __future__ import annotations

import asyncio

from kodad.domain.errors import KodaError
from kodad.domain.events import Event, EventPayload
from kodad.domain.ids import new_id
from kodad.domain.model import SessionRecord, TurnEndReason, now_us
from kodad.engine import validation
from kodad.engine.inputs import ParentTurn, TurnInput
from kodad.engine.launch import Launch, Launcher
from kodad.engine.live import Core
from kodad.tools import ToolError, ToolOutcome

# A sub-agent's tool rounds unless its profile says otherwise; then one round without tools.
SUBAGENT_LOOP_CAP = 30
TITLE_CHARS = 120


class Subagents:
    def __init__(self, core: Core, launcher: Launcher) -> None:
        self._core = core
        self._launcher = launcher

    async def run(self, parent: ParentTurn, call_id: str, agent: str, task: str) -> ToolOutcome:
        """Runs `task` as a child session of `parent`'s with the profile `agent`, to its end;
        its events reach the parent's log tagged with the child session and `call_id`, its
        questions are answered through the parent. Cancelling the parent cancels it."""
        core, launcher = self._core, self._launcher
        source = parent.session
        try:
            profile = core.profiles.get(agent, source.workspace)
        except KodaError as e:
            names = ", ".join(p.name for p in core.profiles.all(source.workspace))
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
        await core.store.create_session(record)
        live = await core.live.load(record.id)
        parent_live = await core.live.load(source.id)
        parent_log = parent_live.log
        # The parent's MCP servers (its session's and the sub-agent profile's), in its hub.
        mcp_tools, notices, deferred = await launcher.mcp_tools(parent_live, source, profile)
        turn_id = new_id("t")
        token = await launcher.lease(live, turn_id)

        def relay(payload: EventPayload) -> Event:
            return parent_log.emit(
                parent.id, payload, subagent_session_id=record.id, parent_call_id=call_id
            )

        tools = core.tools.with_tools(mcp_tools).restricted(
            lambda name: name != "invoke_agent", "a sub-agent"
        )
        launch = Launch(
            profile,
            profile.loop_cap or SUBAGENT_LOOP_CAP,
            tools,
            turn_id,
            token,
            tuple(notices),
            deferred,
            relay=relay,
            pending=parent.pending,
        )
        child = launcher.launch(live, record, TurnInput(task), launch)
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
