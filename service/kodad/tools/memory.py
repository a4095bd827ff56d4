"""memory_read / memory_write: notes that outlive sessions — the project's, in the workspace's
`.kodad/MEMORY.md`, and the user's global one ($KODAD_GLOBAL_MEMORY, else MEMORY.md in the
user's kodad data directory) — one per tenant when the service authenticates callers, so no
tenant reads another's. Both are put into every turn's system prompt (see memory_prompt).
The project file is workspace content: it is read and written beneath the workspace only
(a symlink out is refused), like every file tool's path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar

from kodad.domain.model import FileChangeKind
from kodad.paths import user_dir
from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

PROJECT_FILE = ".kodad/MEMORY.md"
MAX_MEMORY = 64 * 1024
PROMPT_LIMIT = 16 * 1024
SCOPES = ("project", "global")


def global_memory_file(tenant: str = "") -> Path:
    """The global memory of `tenant` ("" without authentication: the user's own)."""
    base = Path(os.environ.get("KODAD_GLOBAL_MEMORY") or user_dir("data") / "MEMORY.md")
    if not tenant:
        return base
    # Tenant names are [A-Za-z0-9._-@] (api/auth.py); hashed so none can name a path.
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:32]
    return base.parent / "tenants" / digest / base.name


def _read_global(tenant: str) -> str:
    try:
        return global_memory_file(tenant).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _read_project(workspace: Workspace) -> str:
    try:
        return workspace.read_bytes(PROJECT_FILE, MAX_MEMORY * 4).decode(errors="replace")
    except ToolError:
        if workspace.stat(PROJECT_FILE) is None:
            return ""
        raise


def _read(scope: str, workspace: Workspace, tenant: str) -> str:
    if scope == "project":
        return _read_project(workspace)
    if scope == "global":
        return _read_global(tenant)
    raise ToolError(f"scope must be one of {', '.join(SCOPES)}")


def memory_prompt(workspace: str, tenant: str = "") -> str:
    """The memory files as a system prompt section ("" when both are empty). A project
    file that cannot be read safely (a link out, a hard link) is left out."""
    project = ""
    # Most workspaces have none: a plain lookup that finds nothing settles it (one reading
    # beneath the workspace, which only refuses more, would find nothing either).
    if os.path.lexists(os.path.join(workspace, PROJECT_FILE)):
        try:
            project = _read_project(Workspace(workspace))
        except (ToolError, OSError):
            project = ""
    parts = []
    for title, text in (
        ("Project memory (.kodad/MEMORY.md)", project),
        ("Global memory", _read_global(tenant)),
    ):
        if text.strip():
            parts.append(f"## {title}\n{text.strip()[:PROMPT_LIMIT]}")
    return "\n\n".join(parts)


_SCOPE = {"type": "string", "enum": list(SCOPES), "description": "project (default) or global"}


class MemoryRead(BuiltinTool):
    name: ClassVar[str] = "memory_read"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Read the persistent memory: notes about this project (scope project) or the user "
        "(scope global) kept across sessions."
    )
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"scope": _SCOPE}}

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        text = _read(args.string("scope", "project"), ctx.workspace, ctx.tenant)
        return ctx.cap(text or "(memory is empty)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Read the {args.string('scope', 'project')} memory")


class MemoryWrite(BuiltinTool):
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
        if mode not in ("append", "replace"):
            raise ToolError("mode must be append or replace")
        before = _read(scope, ctx.workspace, ctx.tenant)
        text = content if mode == "replace" else before.rstrip("\n") + "\n" + content
        text = text.strip("\n") + "\n"
        if len(text.encode()) > MAX_MEMORY:
            raise ToolError(f"the memory would exceed {MAX_MEMORY} bytes; replace it instead")
        if scope == "project":
            existed = ctx.workspace.write_bytes(PROJECT_FILE, text.encode())
            change = FileChangeKind.MODIFIED if existed else FileChangeKind.CREATED
            ctx.changed(PROJECT_FILE, change)
        else:
            path = global_memory_file(ctx.tenant)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return ToolOutcome(f"{scope} memory updated ({len(text)} characters)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        scope, mode = args.string("scope", "project"), args.string("mode", "append")
        if mode not in ("append", "replace"):
            raise ToolError("mode must be append or replace")
        if scope not in SCOPES:
            raise ToolError(f"scope must be one of {', '.join(SCOPES)}")
        verb = "Replace" if mode == "replace" else "Add to"
        return Description(f"{verb} the {scope} memory", args.string("content"))
