"""recall_context{query}: search this session's stored history, including what context
compaction summarised away."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from kodad.domain.model import Message
from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_HITS = 8
SNIPPET = 300


def _texts(m: Message) -> str:
    parts = [m.text, *(c.arguments_json for c in m.tool_calls)]
    if m.tool_result is not None:
        parts.append(m.tool_result.output)
    return "\n".join(p for p in parts if p)


class RecallContext(BuiltinTool):
    name: ClassVar[str] = "recall_context"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Search this session's earlier turns (also what was summarised to save context) for "
        "words; returns the best matching passages with their message numbers."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    }

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        words = [w.lower() for w in re.findall(r"\w+", args.string("query"))]
        if not words:
            raise ToolError("query must contain a word")
        if ctx.history is None:
            raise ToolError("no history here")
        scored = []
        for m in await ctx.history():
            if m.turn_id == ctx.turn_id:
                continue  # the running turn is in the model's context already
            text = _texts(m)
            lower = text.lower()
            score = sum(lower.count(w) for w in words)
            if score:
                at = min((lower.find(w) for w in words if w in lower), default=0)
                start = max(0, at - SNIPPET // 3)
                scored.append((score, m.index, m.role.value, text[start : start + SNIPPET]))
        if not scored:
            return ToolOutcome("no earlier message mentions that")
        scored.sort(key=lambda s: (-s[0], -s[1]))
        hits = [f"#{index} ({role}): {snippet}" for _, index, role, snippet in scored[:MAX_HITS]]
        return ctx.cap("\n\n".join(hits))

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Search the history for {args.string('query')!r}")
