"""Search tools: glob (file names) and grep (file contents)."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from kodad.tools.base import Args, BuiltinTool, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace, read_regular

MAX_RESULTS = 1000
MAX_GREP_FILE_BYTES = 5 * 1024 * 1024
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})


def _walk(workspace: Workspace, top: str) -> Iterator[tuple[str, int, list[str]]]:
    """(directory relative to the root, its descriptor, its file names) for every directory
    under `top`, sorted, never through a symbolic link."""
    base = workspace.relative_path(top)
    with workspace.directory(base) as fd:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            rel = os.path.normpath(os.path.join(base, dirpath))
            yield ("" if rel == "." else rel + "/"), dir_fd, sorted(filenames)


class Glob(BuiltinTool):
    name: ClassVar[str] = "glob"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Find files of the workspace whose path matches a glob pattern such as "
        "'**/*.py' or 'src/*.ts'. Returns paths relative to the workspace, sorted."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"pattern": {"type": "string", "description": "The glob pattern."}},
        "required": ["pattern"],
        "additionalProperties": False,
    }

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        pattern = args.string("pattern")
        if not pattern or pattern.startswith("/") or ".." in Path(pattern).parts:
            raise ToolError("pattern must be relative to the workspace, without '..'")

        def find() -> list[str]:
            found = []
            for directory, _, names in _walk(ctx.workspace, "."):
                for name in names:
                    rel = directory + name
                    if fnmatch.fnmatchcase(rel, pattern) or (
                        pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:])
                    ):
                        found.append(rel)
            return found

        matches = await asyncio.to_thread(find)
        if not matches:
            return ToolOutcome("no files match")
        if len(matches) > MAX_RESULTS:
            more = len(matches) - MAX_RESULTS
            return ToolOutcome(
                "\n".join(matches[:MAX_RESULTS]) + f"\n[{more} more]", truncated=True
            )
        return ctx.cap("\n".join(matches))

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Find files matching {args.string('pattern')}")


class Grep(BuiltinTool):
    name: ClassVar[str] = "grep"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Search file contents of the workspace for a regular expression (Python syntax). "
        "Returns 'path:line: text' lines. `path` limits the search to a file or directory; "
        "`include` to file names matching a glob such as '*.py'."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Regular expression."},
            "path": {"type": "string", "description": "File or directory to search."},
            "include": {"type": "string", "description": "Glob on file names, e.g. '*.py'."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        source = args.string("pattern")
        shown = args.string("path", ".")
        workspace = ctx.workspace
        include = args.string("include", "")
        try:
            regex = re.compile(source)
        except re.error as e:
            raise ToolError(f"invalid regular expression {source!r}: {e}") from None
        found = workspace.stat(shown)
        if found is None:
            raise ToolError(f"{shown}: no such file or directory")

        def files() -> Iterator[tuple[str, bytes | None]]:
            if not stat.S_ISDIR(found.st_mode):
                rel = workspace.relative_path(shown)
                parent, _, name = rel.rpartition("/")
                with workspace.directory(parent or ".") as fd:
                    yield rel, read_regular(fd, name, MAX_GREP_FILE_BYTES)
                return
            for directory, dir_fd, names in _walk(workspace, shown):
                for name in names:
                    if not include or fnmatch.fnmatchcase(name, include):
                        yield directory + name, read_regular(dir_fd, name, MAX_GREP_FILE_BYTES)

        def search() -> tuple[list[str], bool]:
            hits: list[str] = []
            for rel, data in files():
                if data is None or b"\x00" in data[:8192]:
                    continue  # a link, a special or binary file, or too large
                for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                    if regex.search(line):
                        hits.append(f"{rel}:{number}: {line}")
                        if len(hits) >= MAX_RESULTS:
                            return hits, True
            return hits, False

        hits, more = await asyncio.to_thread(search)
        if not hits:
            return ToolOutcome("no matches")
        outcome = ctx.cap("\n".join(hits))
        if more:
            return ToolOutcome(
                outcome.output + f"\n[stopped at {MAX_RESULTS} matches]", truncated=True
            )
        return outcome

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Search for {args.string('pattern')}")
