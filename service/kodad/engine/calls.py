"""Refusing a tool call before it runs, and running one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from kodad import metrics
from kodad.domain.model import ApprovalMode, SessionRecord, ToolCall
from kodad.tools import Tool, ToolContext, ToolKind, ToolOutcome, ToolRegistry
from kodad.tools.base import Args

# Tools whose calls in one response run at the same time (each a sub-agent of its own).
PARALLEL_TOOLS = frozenset({"invoke_agent"})


def refusal(
    call: ToolCall,
    tool: Tool | None,
    tools: ToolRegistry,
    session: SessionRecord,
    cut_off: set[str],
) -> ToolOutcome | None:
    """What the model gets instead of running a call that must not run (None: it may)."""
    if call.call_id in cut_off:
        limit = session.provider.max_output_tokens
        return ToolOutcome(
            "not run: the output token limit"
            + (f" ({limit} tokens)" if limit else "")
            + " ended the response inside this call, so its arguments are incomplete;"
            " make smaller calls (e.g. write a large file in parts) or raise the"
            " session's provider.max_output_tokens",
            is_error=True,
        )
    if tool is None:
        known = ", ".join(tools.names)
        refused = tools.refusal(call.tool_name)
        text = refused or f"unknown tool {call.tool_name!r}"
        return ToolOutcome(f"{text}; tools: {known}", True)
    if session.approval_mode is ApprovalMode.READ_ONLY and tool.kind is not ToolKind.READ_ONLY:
        return ToolOutcome(
            "refused: the session is in read-only mode; only reading tools may run", True
        )
    return None


async def run(tool: Tool, args: Args, ctx: ToolContext, call_id: str) -> ToolOutcome:
    """Runs a call that passed the gate, traced and timed."""
    with (
        metrics.TRACER.start_as_current_span(
            "kodad.tool", attributes={"kodad.tool": tool.name, "kodad.call_id": call_id}
        ),
        metrics.timed(metrics.TOOL_SECONDS, tool.name),
    ):
        return await tool.run(args, ctx)


async def run_all(
    calls: tuple[ToolCall, ...],
    run_one: Callable[[ToolCall], Coroutine[Any, Any, ToolOutcome]],
    finish: Callable[[ToolCall, ToolOutcome], Awaitable[None]],
) -> None:
    """Runs a response's calls in order, consecutive calls of a parallel tool together;
    each outcome is finished (stored) in call order."""
    i = 0
    while i < len(calls):
        j = i + 1
        if calls[i].tool_name in PARALLEL_TOOLS:
            while j < len(calls) and calls[j].tool_name in PARALLEL_TOOLS:
                j += 1
        if j - i == 1:
            await finish(calls[i], await run_one(calls[i]))
        else:
            async with asyncio.TaskGroup() as group:
                runs = [group.create_task(run_one(call)) for call in calls[i:j]]
            for call, run in zip(calls[i:j], runs, strict=True):
                await finish(call, run.result())
        i = j
