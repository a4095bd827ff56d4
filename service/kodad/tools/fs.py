"""File tools: read_file, write_file, edit_file, delete_file, list_dir."""

from __future__ import annotations

import asyncio
import difflib
import os
import stat
from typing import Any, ClassVar

from kodad.domain.model import ApprovalRisk, FileChangeKind
from kodad.tools.base import (
    ApprovalScope,
    Args,
    BuiltinTool,
    Description,
    ToolContext,
    ToolKind,
    ToolOutcome,
)
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_READ_BYTES = 10 * 1024 * 1024
MAX_LIST_ENTRIES = 1000


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_PATH = {"type": "string", "description": "File path, relative to the workspace root."}


def _read_text(workspace: Workspace, shown: str) -> str:
    data = workspace.read_bytes(shown, MAX_READ_BYTES)
    if b"\x00" in data[:8192]:
        raise ToolError(f"{shown} is a binary file")
    return data.decode("utf-8", errors="replace")


def _current(workspace: Workspace, shown: str) -> str | None:
    """The file's text for a preview (a placeholder when binary or huge), None if missing."""
    if workspace.stat(shown) is None:
        return None
    try:
        return _read_text(workspace, shown)
    except ToolError as e:
        return f"[{e}]\n"


def unified_diff(shown: str, before: str | None, after: str | None) -> str:
    """A unified diff of a file's change; None stands for a missing file."""
    return "".join(
        difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile="/dev/null" if before is None else f"a/{shown}",
            tofile="/dev/null" if after is None else f"b/{shown}",
        )
    )


def _lines(text: str) -> str:
    count = len(text.splitlines())
    return f"{count} line{'' if count == 1 else 's'}"


class ReadFile(BuiltinTool):
    name: ClassVar[str] = "read_file"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Read a UTF-8 text file of the workspace. Returns its lines from `offset` (1-based, "
        "default 1), at most `limit` lines (default 2000)."
    )
    parameters: ClassVar[dict[str, Any]] = _schema(
        {
            "path": _PATH,
            "offset": {"type": "integer", "description": "First line to return, from 1."},
            "limit": {"type": "integer", "description": "Most lines to return."},
        },
        ["path"],
    )

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        shown = args.string("path")
        offset = args.integer("offset", 1)
        limit = args.integer("limit", 2000)
        if offset < 1 or limit < 1:
            raise ToolError("offset and limit must be at least 1")
        text = await asyncio.to_thread(_read_text, ctx.workspace, shown)
        lines = text.splitlines(keepends=True)
        chosen = lines[offset - 1 : offset - 1 + limit]
        rest = len(lines) - (offset - 1 + len(chosen))
        outcome = ctx.cap("".join(chosen))
        if rest > 0:
            note = f"\n[{rest} more lines; read on with offset={offset + len(chosen)}]"
            return ToolOutcome(outcome.output + note, truncated=True)
        return outcome

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Read {args.string('path')}")


class WriteFile(BuiltinTool):
    name: ClassVar[str] = "write_file"
    kind: ClassVar[ToolKind] = ToolKind.MUTATING
    description: ClassVar[str] = (
        "Create or overwrite a file of the workspace with `content` (parents are created)."
    )
    parameters: ClassVar[dict[str, Any]] = _schema(
        {"path": _PATH, "content": {"type": "string", "description": "The whole new content."}},
        ["path", "content"],
    )

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        shown = args.string("path")
        content = args.string("content")
        workspace = ctx.workspace
        path = workspace.resolve(shown)
        data = content.encode()
        current = workspace.stat(shown)
        if (
            current is not None
            and stat.S_ISREG(current.st_mode)
            and current.st_size == len(data)
            and await asyncio.to_thread(workspace.read_bytes, shown, MAX_READ_BYTES) == data
        ):
            return ToolOutcome(f"{shown} already has this content; nothing written")
        existed = await asyncio.to_thread(workspace.write_bytes, shown, data)
        change = FileChangeKind.MODIFIED if existed else FileChangeKind.CREATED
        ctx.changed(workspace.relative(path), change)
        verb = "Overwrote" if existed else "Created"
        return ToolOutcome(f"{verb} {shown} ({len(data)} bytes)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        shown = args.string("path")
        content = args.string("content")
        if workspace.is_dir(shown):
            raise ToolError(f"{shown} is a directory")
        before = _current(workspace, shown)
        verb = "Create" if before is None else "Overwrite"
        return Description(
            f"{verb} {shown} ({_lines(content)})", unified_diff(shown, before, content)
        )


class EditFile(BuiltinTool):
    name: ClassVar[str] = "edit_file"
    kind: ClassVar[ToolKind] = ToolKind.MUTATING
    description: ClassVar[str] = (
        "Replace `old_string` with `new_string` in a file. `old_string` must occur exactly "
        "once unless `replace_all` is true."
    )
    parameters: ClassVar[dict[str, Any]] = _schema(
        {
            "path": _PATH,
            "old_string": {"type": "string", "description": "Exact text to replace."},
            "new_string": {"type": "string", "description": "Replacement text."},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence."},
        },
        ["path", "old_string", "new_string"],
    )

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        shown = args.string("path")
        old = args.string("old_string")
        new = args.string("new_string")
        replace_all = args.boolean("replace_all", False)
        if not old:
            raise ToolError("old_string must not be empty; use write_file to create a file")
        if old == new:
            raise ToolError("old_string and new_string are the same")
        path = ctx.workspace.resolve(shown)
        text = await asyncio.to_thread(_read_text, ctx.workspace, shown)
        count = text.count(old)
        if count == 0:
            raise ToolError(f"old_string was not found in {shown}")
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string occurs {count} times in {shown}; add context to make it unique "
                "or set replace_all"
            )
        await asyncio.to_thread(ctx.workspace.write_bytes, shown, text.replace(old, new).encode())
        ctx.changed(ctx.workspace.relative(path), FileChangeKind.MODIFIED)
        return ToolOutcome(f"Replaced {count} occurrence{'s' if count > 1 else ''} in {shown}")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        shown = args.string("path")
        old = args.string("old_string")
        new = args.string("new_string")
        replace_all = args.boolean("replace_all", False)
        text = _read_text(workspace, shown)
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(f"old_string was not found in {shown}")
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string occurs {count} times in {shown}; add context to make it unique "
                "or set replace_all"
            )
        after = text.replace(old, new)
        plural = "s" if count > 1 else ""
        return Description(
            f"Edit {shown} ({count} replacement{plural})", unified_diff(shown, text, after)
        )


class DeleteFile(BuiltinTool):
    name: ClassVar[str] = "delete_file"
    kind: ClassVar[ToolKind] = ToolKind.MUTATING
    description: ClassVar[str] = "Delete a file of the workspace (not a directory)."
    parameters: ClassVar[dict[str, Any]] = _schema({"path": _PATH}, ["path"])

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        shown = args.string("path")
        path = ctx.workspace.resolve(shown)
        ctx.workspace.unlink(shown)
        ctx.changed(ctx.workspace.relative(path), FileChangeKind.DELETED)
        return ToolOutcome(f"Deleted {shown}")

    async def needs_approval(self, args: Args, scope: ApprovalScope) -> ApprovalRisk | None:
        """Deleting a file this session created (and still owns) undoes its own work."""
        workspace = scope.workspace
        if await scope.owns(workspace.relative(workspace.resolve(args.string("path")))):
            return None
        return ApprovalRisk.UNSPECIFIED

    def describe(self, args: Args, workspace: Workspace) -> Description:
        shown = args.string("path")
        st = workspace.stat(shown)
        if st is None or not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{shown}: no such file")
        return Description(f"Delete {shown}", unified_diff(shown, _current(workspace, shown), None))


class ListDir(BuiltinTool):
    name: ClassVar[str] = "list_dir"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "List a directory of the workspace (default: its root); directories end in /."
    )
    parameters: ClassVar[dict[str, Any]] = _schema(
        {"path": {"type": "string", "description": "Directory, relative to the workspace."}},
        [],
    )

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        shown = args.string("path", ".")
        with ctx.workspace.directory(shown) as fd:
            # Links are listed as names, never followed.
            entries = sorted(
                e.name + "/" if e.is_dir(follow_symlinks=False) else e.name for e in os.scandir(fd)
            )
        if len(entries) > MAX_LIST_ENTRIES:
            kept = "\n".join(entries[:MAX_LIST_ENTRIES])
            more = len(entries) - MAX_LIST_ENTRIES
            return ToolOutcome(f"{kept}\n[{more} more entries]", truncated=True)
        return ctx.cap("\n".join(entries) if entries else "(empty directory)")

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"List {args.string('path', '.')}")
