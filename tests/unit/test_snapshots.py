"""Workspace snapshots: captures that share what did not change, and byte-exact restores."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kodad.engine.snapshots import Limits, ObjectStore, WorkspaceSnapshots, changes


def contents(root: Path) -> dict[str, tuple[bytes | str, int]]:
    out: dict[str, tuple[bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".git"):
            continue
        if path.is_symlink():
            out[rel] = (os.readlink(path), 0)
        elif path.is_file():
            out[rel] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def test_a_restore_is_byte_exact_after_edits_renames_deletes_and_new_files(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "a.py").write_text("print('a')\n")
    (ws / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (ws / "run.sh").chmod(0o755)
    (ws / "data.bin").write_bytes(bytes(range(256)) * 10)
    (ws / "link").symlink_to("src/pkg/a.py")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    snaps = WorkspaceSnapshots(ObjectStore(tmp_path / "store"), ws, Limits())
    before = snaps.capture()
    original = contents(ws)

    subprocess.run(["sed", "-i", "s/hi/bye/", str(ws / "run.sh")], check=True)
    (ws / "data.bin").unlink()
    shutil.move(ws / "src" / "pkg", ws / "src" / "lib")
    (ws / "new.txt").write_text("untracked\n")
    (ws / "run.sh").chmod(0o600)
    (ws / ".git" / "HEAD").write_text("changed by the user's own git\n")
    after = snaps.capture()
    assert changes(snaps.files(before.tree), snaps.files(after.tree)) == {
        "data.bin": "deleted",
        "new.txt": "created",
        "run.sh": "modified",
        "src/lib/a.py": "created",
        "src/pkg/a.py": "deleted",
    }

    changed = snaps.restore(before.tree, after.tree)
    assert contents(ws) == original
    assert not (ws / "src" / "lib").exists()
    assert (ws / ".git" / "HEAD").read_text() == "changed by the user's own git\n"  # untouched
    assert "new.txt" in changed and "run.sh" in changed
    assert snaps.capture().tree == before.tree


def test_captures_share_unchanged_files_and_skip_what_is_too_large(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for i in range(50):
        (ws / f"f{i}.txt").write_text(f"file {i}\n")
        os.utime(ws / f"f{i}.txt", (1_700_000_000, 1_700_000_000))  # not just changed
    (ws / "big.iso").write_bytes(b"x" * 5000)
    store = ObjectStore(tmp_path / "store")
    snaps = WorkspaceSnapshots(store, ws, Limits(max_file_bytes=4096))
    first = snaps.capture()
    assert first.skipped == ["big.iso"]
    objects = sum(1 for _ in (tmp_path / "store").rglob("*") if _.is_file())
    (ws / "f7.txt").write_text("changed\n")
    second = snaps.capture()
    added = sum(1 for _ in (tmp_path / "store").rglob("*") if _.is_file()) - objects
    assert added == 2  # the new blob and the one directory that holds it
    assert second.added_bytes == len("changed\n")  # only the changed file was read
    # A restore leaves the file it could not capture alone.
    snaps.restore(first.tree, second.tree)
    assert (ws / "big.iso").stat().st_size == 5000
    assert (ws / "f7.txt").read_text() == "file 7\n"


def test_a_restore_never_writes_through_a_symlink_planted_in_the_workspace(
    tmp_path: Path,
) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "conf").mkdir(parents=True)
    outside.mkdir()
    (ws / "conf" / "settings").write_text("mine\n")
    snaps = WorkspaceSnapshots(ObjectStore(tmp_path / "store"), ws, Limits())
    before = snaps.capture()
    shutil.rmtree(ws / "conf")
    (ws / "conf").symlink_to(outside)  # the model swapped the directory for a link out
    current = snaps.capture()
    snaps.restore(before.tree, current.tree)
    assert list(outside.iterdir()) == []
    assert (ws / "conf").is_dir() and not (ws / "conf").is_symlink()
    assert (ws / "conf" / "settings").read_text() == "mine\n"


def test_a_snapshot_store_inside_the_workspace_is_not_captured(tmp_path: Path) -> None:
    ws = tmp_path / "ws"  # e.g. a home directory that holds the service's data
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("a = 1\n")
    (ws / "data" / "snapshots").mkdir(parents=True)
    store = ObjectStore(ws / "data" / "snapshots")
    snaps = WorkspaceSnapshots(store, ws, Limits())
    first = snaps.capture()
    (ws / "src" / "a.py").write_text("a = 2\n")
    second = snaps.capture()  # the store now holds objects: a capture must not take them in
    (ws / "src" / "a.py").write_text("a = 1\n")
    assert snaps.capture().tree == first.tree  # as if the store were not there
    assert second.tree != first.tree
    snaps.restore(first.tree, second.tree)
    assert (ws / "data" / "snapshots" / "objects").is_dir()  # a restore leaves it alone
