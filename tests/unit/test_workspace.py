"""Workspace paths: opened beneath the root by the kernel, so no link, at any depth and at
any moment, leads out — with openat2 and with the component walk used without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kodad.tools import workspace as workspace_module
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace
from tests.helpers import flipping


@pytest.fixture(params=["openat2", "component walk"])
def space(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "ws"
    root.mkdir()
    saved = workspace_module._openat2_works
    workspace_module._openat2_works = request.param == "openat2"
    try:
        yield Workspace(root)
    finally:
        workspace_module._openat2_works = saved


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_text("secret")
    return path


def test_links_out_are_refused_at_any_depth(space: Workspace, outside: Path) -> None:
    root = space.root
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "out").symlink_to(outside)
    (root / "abs").symlink_to(outside / "secret")
    (root / "rel").symlink_to("../outside/secret")
    for path in ("a/b/out/secret", "abs", "rel", "../outside/secret", str(outside / "secret")):
        with pytest.raises(ToolError, match="outside the workspace"):
            space.read_bytes(path, 1000)
        with pytest.raises(ToolError, match="outside the workspace"):
            space.write_bytes(path, b"x")
    assert (outside / "secret").read_text() == "secret"


def test_writing_creates_parents_and_tells_whether_the_file_existed(space: Workspace) -> None:
    assert space.write_bytes("deep/er/file.txt", b"one") is False
    assert space.write_bytes("deep/er/file.txt", b"two") is True
    assert space.read_bytes("deep/er/file.txt", 10) == b"two"


def test_a_parent_that_is_a_link_out_is_not_created_through(
    space: Workspace, outside: Path
) -> None:
    (space.root / "sub").symlink_to(outside)
    with pytest.raises(ToolError, match="outside the workspace"):
        space.write_bytes("sub/new/file", b"x")
    assert not (outside / "new").exists()


def test_hard_links_are_refused(space: Workspace, outside: Path) -> None:
    os.link(outside / "secret", space.root / "link")
    with pytest.raises(ToolError, match="hard links"):
        space.read_bytes("link", 100)
    with pytest.raises(ToolError, match="hard links"):
        space.write_bytes("link", b"owned")
    assert (outside / "secret").read_text() == "secret"


def test_unlink_removes_the_link_not_its_target(space: Workspace, outside: Path) -> None:
    (space.root / "inner").symlink_to(outside / "secret")
    space.unlink("inner")
    assert not (space.root / "inner").is_symlink()
    assert (outside / "secret").read_text() == "secret"


def test_a_fifo_does_not_hang_a_read(space: Workspace) -> None:
    os.mkfifo(space.root / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        space.read_bytes("pipe", 100)


def test_a_path_flipped_between_file_and_symlink_never_lands_outside(
    space: Workspace, outside: Path
) -> None:
    victim = outside / "secret"
    landed = refused = 0
    with flipping(space.root / "target", victim):
        for i in range(2000):
            try:
                space.write_bytes("target", f"write {i}".encode())
                landed += 1
            except (ToolError, FileNotFoundError):  # refused, or caught between two renames
                refused += 1
    assert victim.read_text() == "secret"
    assert landed + refused == 2000
