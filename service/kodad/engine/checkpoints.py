"""A turn's checkpoints of its workspace: the state before its first change, after each
tool call that may change files (file tools, bash, MCP tools), and the turn's diff at its end.
Files a command changed are recorded like a file tool's (FileChanged, ListFileChanges)."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from kodad.domain.events import (
    CheckpointTaken,
    Event,
    EventPayload,
    FileChanged,
    FileDiffStat,
    TurnDiff,
)
from kodad.domain.model import FileChangeKind, now_us
from kodad.engine.snapshots import (
    Capture,
    Entry,
    Limits,
    ObjectStore,
    WorkspaceSnapshots,
    changes,
)
from kodad.store.base import Store
from kodad.tools import ToolContext, ToolKind

KINDS = {
    "created": FileChangeKind.CREATED,
    "modified": FileChangeKind.MODIFIED,
    "deleted": FileChangeKind.DELETED,
}
MAX_DIFF_BYTES = 1024 * 1024  # a blob larger than this is shown as binary in diffs


@dataclass
class Snapshots:
    """The service's snapshot store (--snapshot-dir): one object store, a capturer (with its
    stat cache) per workspace, and one capture at a time per workspace."""

    root: Path | None
    limits: Limits = field(default_factory=Limits)
    _workspaces: dict[str, WorkspaceSnapshots] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def of(self, workspace: str) -> WorkspaceSnapshots | None:
        if self.root is None:
            return None
        if workspace not in self._workspaces:
            store = ObjectStore(self.root)
            self._workspaces[workspace] = WorkspaceSnapshots(store, Path(workspace), self.limits)
        return self._workspaces[workspace]

    def lock(self, workspace: str) -> asyncio.Lock:
        return self._locks.setdefault(workspace, asyncio.Lock())

    async def capture(self, workspace: str) -> Capture | None:
        snaps = self.of(workspace)
        if snaps is None:
            return None
        async with self.lock(workspace):
            return await asyncio.to_thread(snaps.capture)


def line_stats(snaps: WorkspaceSnapshots, before: str, after: str) -> list[FileDiffStat]:
    """Per changed file: lines added and removed between two snapshots."""
    old, new = snaps.files(before), snaps.files(after)
    out = []
    for path, change in changes(old, new).items():
        a, b = _text(snaps, old.get(path)), _text(snaps, new.get(path))
        if a is None or b is None:
            out.append(FileDiffStat(path, KINDS[change], binary=True))
            continue
        added = removed = 0
        for line in difflib.unified_diff(a, b, lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                removed += 1
        out.append(FileDiffStat(path, KINDS[change], added, removed))
    return out


def unified_diff(snaps: WorkspaceSnapshots, before: str, after: str) -> str:
    old, new = snaps.files(before), snaps.files(after)
    parts = []
    for path, change in changes(old, new).items():
        a, b = _text(snaps, old.get(path)), _text(snaps, new.get(path))
        if a is None or b is None:
            parts.append(f"Binary files a/{path} and b/{path} differ\n")
            continue
        src = "/dev/null" if change == "created" else f"a/{path}"
        dst = "/dev/null" if change == "deleted" else f"b/{path}"
        parts.append("".join(difflib.unified_diff(a, b, src, dst)))
    return "".join(parts)


def _text(snaps: WorkspaceSnapshots, entry: Entry | None) -> list[str] | None:
    """A snapshot file's lines ([] for an absent file); None for a binary or huge one."""
    if entry is None:
        return []
    if entry.kind == "l" or entry.size > MAX_DIFF_BYTES:
        return None
    data = snaps.objects.get(entry.blob)
    try:
        return data.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


class TurnCheckpoints:
    """The checkpoints of one turn (does nothing without a snapshot store)."""

    def __init__(
        self,
        snapshots: Snapshots | None,
        store: Store,
        session_id: str,
        turn_id: str,
        workspace: str,
        emit: Callable[[EventPayload], Event],
    ) -> None:
        self._snapshots = snapshots
        self._store = store
        self._session_id, self._turn_id, self._workspace = session_id, turn_id, workspace
        self._emit = emit
        self._before: asyncio.Task[Capture | None] | None = None
        self._first = ""  # the tree before the turn's first change
        self._last = ""  # the latest tree
        self._last_files: dict[str, Entry] | None = None  # its files, once read

    def start(self) -> None:
        """Captures the state before the turn in the background (the turn goes on)."""
        if self._snapshots is not None and self._snapshots.root is not None:
            self._before = asyncio.create_task(self._snapshots.capture(self._workspace))

    async def _ready(self) -> None:
        """Waits for the state before the turn, and announces it, once."""
        task, self._before = self._before, None
        if task is None:
            return
        captured = await task
        if captured is not None:
            self._first = self._last = captured.tree
            self._emit(CheckpointTaken(captured.tree, "", 0, tuple(captured.skipped)))

    @contextlib.asynccontextmanager
    async def around(self, call_id: str, ctx: ToolContext, kind: ToolKind) -> AsyncIterator[None]:
        """Around a tool call: the state before the turn exists first; afterwards the files
        the tool reported, then the others it changed, are recorded and checkpointed."""
        mutating = kind is not ToolKind.READ_ONLY
        if mutating:
            await self._ready()
        try:
            yield
        finally:
            reported = {path for path, _ in ctx.changes}
            for path, change in ctx.changes:
                await self._record(path, change)
            ctx.changes.clear()
            if mutating and self._snapshots is not None and self._first:
                await self._after(call_id, reported)

    async def _after(self, call_id: str, reported: set[str]) -> None:
        assert self._snapshots is not None
        captured = await self._snapshots.capture(self._workspace)
        if captured is None or captured.tree == self._last:
            return
        snaps = self._snapshots.of(self._workspace)
        assert snaps is not None
        before = self._last_files
        now = await asyncio.to_thread(snaps.files, captured.tree)
        if before is None:
            before = await asyncio.to_thread(snaps.files, self._last)
        changed = changes(before, now)
        self._last_files = now  # the next call compares with it, without reading it again
        for path, change in changed.items():
            if path not in reported:  # what a command did, that no tool reported
                await self._record(path, KINDS[change])
        self._last = captured.tree
        self._emit(CheckpointTaken(captured.tree, call_id, len(changed), tuple(captured.skipped)))

    async def _record(self, path: str, change: FileChangeKind) -> None:
        await self._store.record_file_change(
            self._session_id, self._turn_id, path, change, now_us()
        )
        self._emit(FileChanged(path, change))

    async def finish(self) -> None:
        """The turn's diff, when it changed anything (before its turn_ended)."""
        if self._before is not None:
            self._before.cancel()  # no change was made: nothing to keep
            self._before = None
        if self._snapshots is None or not self._first or self._first == self._last:
            return
        snaps = self._snapshots.of(self._workspace)
        assert snaps is not None
        stats = await asyncio.to_thread(line_stats, snaps, self._first, self._last)
        self._emit(TurnDiff(tuple(stats)))
