"""memory_read / memory_write: notes that outlive sessions — the project's, in the workspace's
`.kodad/MEMORY.md`, and the user's global one ($KODAD_GLOBAL_MEMORY, else MEMORY.md in the
user's kodad data directory). Both are put into every turn's system prompt (see
memory_prompt)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from kodad.engine.model import FileChangeKind
from kodad.paths import user_dir
from kodad.tools.base import Args, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

PROJECT_FILE = ".kodad/MEMORY.md"
MAX_MEMORY = 64 * 1024
PROMPT_LIMIT = 16 * 1024
SCOPES = ("project", "global")


def global_memory_file() -> Path:
    return Path(os.environ.get("KODAD_GLOBAL_MEMORY") or user_dir("data") / "MEMORY.md")


def _file(scope: str, workspace: Workspace) -> Path:
    if scope == "project":
        return workspace.resolve(PROJECT_FILE)
    if scope == "global":
        return global_memory_file()
    raise ToolError(f"scope must be one of {', '.join(SCOPES)}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def memory_prompt(workspace: str) -> str:
    """The memory files as a system prompt section ("" when both are empty)."""
    parts = []
    for title, path in (
        ("Project memory (.kodad/MEMORY.md)", Path(workspace) / PROJECT_FILE),
        ("Global memory", global_memory_file()),
    ):
        text = _read(path).strip()
        if text:
            parts.append(f"## {title}\n{text[:PROMPT_LIMIT]}")
    return "\n\n".join(parts)


_SCOPE = {"type": "string", "enum": list(SCOPES), "description": "project (default) or global"}


class MemoryRead:
    name: ClassVar[str] = "memory_read"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Read the persistent memory: notes about this project (scope project) or the user "
        "(scope global) kept across sessions."
    )
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"scope": _SCOPE}}

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        text = _read(_file(args.string("scope", "project"), ctx.workspace))
        return ctx.cap(text or "(memory is empty)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Read the {args.string('scope', 'project')} memory")


class MemoryWrite:
    name: ClassVar[str] = "memory_write"
    kind: ClassVar[ToolKind] = ToolKind.MUTATING
    description: ClassVar[str] = (
        "Remember something across sessions: append a note to (or replace) the project memory "
        "(.kodad/MEMORY.md) or the user's global memory. Keep notes short and durable."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "content": {"type": "string"},
            "scope": _SCOPE,
            "mode": {"type": "string", "enum": ["append", "replace"]},
        },
        "required": ["content"],
    }

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        scope, mode = args.string("scope", "project"), args.string("mode", "append")
        content = args.string("content")
        path = _file(scope, ctx.workspace)
        existed = path.exists()
        text = content if mode == "replace" else _read(path).rstrip("\n") + "\n" + content
        text = text.strip("\n") + "\n"
        if len(text.encode()) > MAX_MEMORY:
            raise ToolError(f"the memory would exceed {MAX_MEMORY} bytes; replace it instead")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if scope == "project":
            change = FileChangeKind.MODIFIED if existed else FileChangeKind.CREATED
            ctx.changed(ctx.workspace.relative(path), change)
        return ToolOutcome(f"{scope} memory updated ({len(text)} characters)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        scope, mode = args.string("scope", "project"), args.string("mode", "append")
        if mode not in ("append", "replace"):
            raise ToolError("mode must be append or replace")
        _file(scope, workspace)
        verb = "Replace" if mode == "replace" else "Add to"
        return Description(f"{verb} the {scope} memory", args.string("content"))
