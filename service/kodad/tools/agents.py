"""invoke_agent: delegate a task to a sub-agent, a child session with its own profile."""

from __future__ import annotations

from typing import Any, ClassVar

from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_TASK = 100_000


class InvokeAgent(BuiltinTool):
    name: ClassVar[str] = "invoke_agent"
    # Invoking changes nothing by itself; the sub-agent's own tool calls are asked about.
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Delegate a self-contained task to a sub-agent that works in the same workspace with "
        "its own context and tools, and returns its final answer as the result. `agent` names "
        "an agent profile (the system prompt lists them). Write the task so it can be done "
        "without this conversation. Several calls in one response run in parallel."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "agent": {"type": "string", "description": "the agent profile to run"},
            "task": {"type": "string", "description": "what the sub-agent must do"},
        },
        "required": ["agent", "task"],
    }

    @staticmethod
    def _request(args: Args) -> tuple[str, str]:
        agent = args.string("agent", "default").strip() or "default"
        task = args.string("task").strip()
        if not task:
            raise ToolError("task must not be empty")
        if len(task) > MAX_TASK:
            raise ToolError(f"task is longer than {MAX_TASK} characters")
        return agent, task

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        agent, task = self._request(args)
        if ctx.subagent is None:
            raise ToolError("sub-agents cannot be invoked here")
        return await ctx.subagent(agent, task)

    def describe(self, args: Args, workspace: Workspace) -> Description:
        agent, task = self._request(args)
        return Description(f"Run the sub-agent {agent!r}", task)
