"""The approval gate of a turn: whether a call asks a human, the asking, and what the
processes of a call may do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from kodad.domain.events import ApprovalRequested, ApprovalResolved, Event, EventPayload, Notice
from kodad.domain.ids import new_id
from kodad.domain.model import (
    ApprovalMode,
    ApprovalRisk,
    Decision,
    McpServerSpec,
    NoticeLevel,
    SandboxPolicy,
    SessionRecord,
    ToolCall,
)
from kodad.engine import approvals, pending, validation
from kodad.engine.pending import ApprovalAnswer, PendingRequests, RequestKind
from kodad.store.base import Store
from kodad.tools import ApprovalScope, Tool, ToolOutcome, Workspace
from kodad.tools.base import Args, Description
from kodad.tools.sandbox import Confinement

T = TypeVar("T")

# The approval requests for starting a workspace's MCP server name this as their tool.
WORKSPACE_SERVER_TOOL = "start_mcp_server"


@dataclass(frozen=True)
class WorkspaceServers:
    """MCP servers a workspace's profile declares, which wait for a human's approval before
    they start; `start` starts the approved ones and returns their tools and problems."""

    specs: tuple[McpServerSpec, ...]
    start: Callable[[list[McpServerSpec]], Awaitable[tuple[list[Tool], list[str]]]]


class Asking(Protocol):
    """What the gate needs of its turn: the session, and a way to emit and to ask."""

    session: SessionRecord
    pending: PendingRequests

    def emit(self, payload: EventPayload) -> Event: ...

    def ask(
        self, request_id: str, kind: RequestKind[T], payload: EventPayload
    ) -> asyncio.Future[T]:
        """Emits a question and opens it; the future resolves with the first answer."""
        ...


class ApprovalGate:
    def __init__(self, turn: Asking, store: Store) -> None:
        self._turn = turn
        self._store = store

    async def check(
        self, tool: Tool, call: ToolCall, args: Args, workspace: Workspace
    ) -> ToolOutcome | bool:
        """Asks a human when the mode, the tool and the rules say so. A bool: the call may
        run, True when a human approved it (or nobody is ever asked: AUTO); otherwise the
        outcome the model gets instead."""
        session = self._turn.session
        if session.approval_mode is ApprovalMode.AUTO:
            return True
        if not approvals.needs_approval(session.approval_mode, tool.kind):
            return False
        scope = ApprovalScope(workspace, lambda path: self._store.owns_file(session.id, path))
        risk = await tool.needs_approval(args, scope)
        if risk is None:
            return False
        rules = session.approval_rules
        if refusing := approvals.refused(rules, tool.name, tool.kind, call.arguments_json):
            self._turn.emit(ApprovalResolved("", Decision.REJECT, call.call_id, refusing))
            what = f"{tool.name} {refusing.command_prefix}".strip()
            return ToolOutcome(f"refused by the session's rule: never run {what}", is_error=True)
        allowing = approvals.allowed(rules, tool.name, tool.kind, call.arguments_json)
        if risk is not ApprovalRisk.HIGH and allowing is not None:
            self._turn.emit(ApprovalResolved("", Decision.APPROVE, call.call_id, allowing))
            return False
        description = tool.describe(args, workspace)
        answer = await self.ask(
            call.call_id, call.tool_name, call.arguments_json, description, risk
        )
        decision, feedback = answer.decision, answer.feedback
        if decision.adds_rule and len(rules) < validation.MAX_APPROVAL_RULES:
            rule = approvals.rule_for(
                tool.name, tool.kind, call.arguments_json, reject=decision.rejects
            )
            await self._store.add_approval_rule(session.id, rule)
            if rule not in rules:
                session.approval_rules = (*rules, rule)
        if decision.rejects:
            text = f"rejected by the user: {feedback}" if feedback else "rejected by the user"
            return ToolOutcome(text, is_error=True)
        return True

    def confinement(self, *, approved: bool) -> Confinement:
        """What the processes of a call may do: the session's sandbox policy for a call a
        human approved (or any call in AUTO), the least for one that runs unasked — so a
        command wrongly taken for a reader, or allowed by a rule, still cannot write."""
        sandbox = self._turn.session.sandbox
        return Confinement(
            write=approved and sandbox.policy is not SandboxPolicy.READ_ONLY,
            network=sandbox.network,
            unconfined=approved and sandbox.policy is SandboxPolicy.FULL_ACCESS,
        )

    async def ask(
        self,
        call_id: str,
        tool_name: str,
        arguments_json: str,
        description: Description,
        risk: ApprovalRisk,
    ) -> ApprovalAnswer:
        """Asks a human and waits for the decision (REJECT when the session's approval
        timeout passes first); the decision is emitted as approval_resolved."""
        turn = self._turn
        request_id = new_id("r")
        summary = description.summary
        request = ApprovalRequested(
            request_id, call_id, tool_name, arguments_json, summary, description.preview, risk
        )
        future = turn.ask(request_id, pending.APPROVAL, request)
        timeout_s = turn.session.approval_timeout_ms / 1000
        try:
            answer = await asyncio.wait_for(future, timeout_s or None)
        except TimeoutError:
            answer = ApprovalAnswer(Decision.REJECT, f"no answer within {timeout_s:g} s")
            turn.emit(
                Notice(
                    NoticeLevel.WARNING,
                    f"approval request {request_id} ({summary}) was not answered "
                    f"within {timeout_s:g} s and was rejected",
                )
            )
        finally:
            turn.pending.close(request_id)
        turn.emit(ApprovalResolved(request_id, answer.decision, call_id))
        return answer

    async def start_workspace_servers(self, servers: WorkspaceServers) -> list[Tool]:
        """Asks before starting each MCP server a workspace's profile declares (workspace
        content must not run programs unasked); returns the approved ones' tools."""
        approved = []
        for spec in servers.specs:
            command = " ".join(spec.command) or spec.url
            arguments = json.dumps(
                {"name": spec.name, "command": list(spec.command), "url": spec.url}
            )
            description = Description(
                f"Start the MCP server {spec.name!r} the workspace declares ({command})", arguments
            )
            answer = await self.ask(
                "", WORKSPACE_SERVER_TOOL, arguments, description, ApprovalRisk.HIGH
            )
            if answer.decision.rejects:
                self._turn.emit(
                    Notice(
                        NoticeLevel.INFO,
                        f"MCP server {spec.name!r} of the workspace was not started: rejected",
                    )
                )
            else:
                approved.append(spec)
        if not approved:
            return []
        tools, problems = await servers.start(approved)
        for problem in problems:
            self._turn.emit(Notice(NoticeLevel.WARNING, problem))
        return tools
