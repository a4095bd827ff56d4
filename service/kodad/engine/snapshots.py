"""Content-addressed snapshots of workspaces, kept out of the workspace and its own VCS.

A snapshot is a tree of JSON objects, one per directory, and blobs for the files; all are
named by the SHA-256 of their bytes, so snapshots share what did not change. Capturing a
workspace stats every entry but reads only files whose size, mtime, inode or mode changed
(and those changed in the last seconds, which mtime cannot tell apart), and writes only the
blobs and directory objects that are new: its cost follows what changed, not the workspace's
size. `.git` directories are never read or written. Restoring writes beneath the workspace
only (tools.workspace: no symlink leads out)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from kodad.tools import Workspace

EMPTY_TREE = ""
_RECENT_NS = 2_000_000_000  # files changed this recently are read again


@dataclass(frozen=True)
class Entry:
    """A file of a snapshot: "f" a regular file, "l" a symlink (its blob is the target)."""

    kind: str
    blob: str
    mode: int = 0o644
    size: int = 0


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 16 * 1024 * 1024
    max_capture_bytes: int = 256 * 1024 * 1024  # new blob bytes one capture may add


@dataclass
class Capture:
    tree: str
    skipped: list[str] = field(default_factory=list)  # too large, or over the capture's budget
    added_bytes: int = 0


class ObjectStore:
    """Blobs and trees on disk, compressed, by hash (written once, atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._identity: tuple[int, int] | None = None

    def identity(self) -> tuple[int, int] | None:
        """The store directory's (device, inode), None before it exists."""
        if self._identity is None:
            with contextlib.suppress(OSError):
                st = self.root.stat()
                self._identity = (st.st_dev, st.st_ino)
        return self._identity

    def _path(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(zlib.compress(data, 1))
            os.replace(tmp, path)
        return digest

    def get(self, digest: str) -> bytes:
        return zlib.decompress(self._path(digest).read_bytes())

    def has(self, digest: str) -> bool:
        return self._path(digest).exists()


class WorkspaceSnapshots:
    """Captures and restores one workspace; keeps the stat cache that makes captures cheap."""

    def __init__(self, objects: ObjectStore, workspace: Path, limits: Limits) -> None:
        self.objects = objects
        self.root = workspace.resolve()
        self.limits = limits
        self._files: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._dirs: dict[str, tuple[tuple[object, ...], str]] = {}

    def capture(self) -> Capture:
        """The workspace's state now, stored; its tree's hash."""
        result = Capture(EMPTY_TREE)
        started = time.time_ns()
        result.tree = self._tree(str(self.root), "", result, started)
        return result

    def _tree(self, path: str, rel: str, result: Capture, started: int) -> str:
        entries: list[tuple[object, ...]] = []
        try:
            listing = list(os.scandir(path))
        except OSError:
            return self._put_tree(rel, ())
        for entry in listing:
            name = entry.name
            if name == ".git":
                continue
            child = f"{rel}/{name}" if rel else name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == self.objects.identity():
                continue  # the snapshot store itself, inside the workspace: never captured
            if stat.S_ISDIR(st.st_mode):
                entries.append((name, "d", self._tree(entry.path, child, result, started), 0, 0))
            elif stat.S_ISREG(st.st_mode):
                blob = self._file(entry.path, child, st, result, started)
                if blob:
                    entries.append((name, "f", blob, st.st_mode & 0o7777, st.st_size))
            elif stat.S_ISLNK(st.st_mode):
                with contextlib.suppress(OSError):
                    target = os.readlink(entry.path).encode()
                    entries.append((name, "l", self.objects.put(target), 0o777, len(target)))
        entries.sort()
        return self._put_tree(rel, tuple(entries))

    def _file(self, path: str, rel: str, st: os.stat_result, result: Capture, started: int) -> str:
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)
        cached = self._files.get(rel)
        if cached is not None and cached[0] == key and started - st.st_mtime_ns > _RECENT_NS:
            return cached[1]
        limits = self.limits
        over_budget = result.added_bytes + st.st_size > limits.max_capture_bytes
        if st.st_size > limits.max_file_bytes or over_budget:
            result.skipped.append(rel)
            return ""
        try:
            with open(path, "rb", opener=_no_follow) as f:
                data = f.read()
        except OSError:
            return ""
        blob = self.objects.put(data)
        result.added_bytes += len(data)
        self._files[rel] = (key, blob)
        return blob

    def _put_tree(self, rel: str, entries: tuple[tuple[object, ...], ...]) -> str:
        cached = self._dirs.get(rel)
        if cached is not None and cached[0] == entries:
            return cached[1]
        digest = self.objects.put(json.dumps(entries, separators=(",", ":")).encode())
        self._dirs[rel] = (entries, digest)
        return digest

    # Reading snapshots

    def files(self, tree: str) -> dict[str, Entry]:
        """Every file of a snapshot by its path relative to the workspace."""
        out: dict[str, Entry] = {}
        if tree:
            self._flatten(tree, "", out)
        return out

    def _flatten(self, tree: str, rel: str, out: dict[str, Entry]) -> None:
        for name, kind, blob, mode, size in json.loads(self.objects.get(tree)):
            path = f"{rel}/{name}" if rel else name
            if kind == "d":
                self._flatten(blob, path, out)
            else:
                out[path] = Entry(kind, blob, mode, size)

    def directories(self, tree: str) -> set[str]:
        """The directories that hold the snapshot's files, at every depth."""
        out: set[str] = set()
        for path in self.files(tree):
            parts = path.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out

    # Restoring

    def restore(self, target: str, current: str) -> list[str]:
        """Makes the workspace match snapshot `target`, from the state `current` (a capture
        taken just before): writes what differs, deletes what `target` lacks (files too
        large to be captured are left alone). Returns the paths it changed."""
        want, have = self.files(target), self.files(current)
        workspace = Workspace(self.root)
        changed: list[str] = []
        for path in sorted(set(have) - set(want), reverse=True):
            with contextlib.suppress(OSError, ValueError):
                workspace.unlink(path)
            changed.append(path)
        for path, entry in sorted(want.items()):
            if have.get(path) == entry:
                continue
            self._write(workspace, path, entry)
            changed.append(path)
        self._remove_empty_dirs(self.directories(current) - self.directories(target))
        self._files.clear()  # restored files have new mtimes: read them again next time
        return sorted(set(changed))

    def _write(self, workspace: Workspace, path: str, entry: Entry) -> None:
        data = self.objects.get(entry.blob)
        existing = workspace.stat(path)
        if existing is not None and (
            not stat.S_ISREG(existing.st_mode) or existing.st_nlink > 1 or entry.kind == "l"
        ):
            workspace.unlink(path)  # a link, or a hard link: replaced, never written through
        if entry.kind == "l":
            workspace.make_parents(path)
            parent, _, name = path.rpartition("/")
            fd = workspace.open(parent or ".", os.O_PATH | os.O_DIRECTORY)
            try:
                os.symlink(data.decode(), name, dir_fd=fd)
            finally:
                os.close(fd)
            return
        workspace.write_bytes(path, data)
        fd = workspace.open(path, os.O_RDONLY)
        try:
            os.fchmod(fd, entry.mode)
        finally:
            os.close(fd)

    def _remove_empty_dirs(self, gone: set[str]) -> None:
        for rel in sorted(gone, key=lambda p: p.count("/"), reverse=True):
            target = self.root / rel
            with contextlib.suppress(OSError):
                if not target.is_symlink() and target.is_dir() and not any(target.iterdir()):
                    target.rmdir()


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def changes(before: dict[str, Entry], after: dict[str, Entry]) -> dict[str, str]:
    """What happened to each path from one snapshot to the other: created, modified, deleted."""
    out = {p: "deleted" for p in before.keys() - after.keys()}
    out |= {p: "created" for p in after.keys() - before.keys()}
    out |= {p: "modified" for p in before.keys() & after.keys() if before[p] != after[p]}
    return dict(sorted(out.items()))
