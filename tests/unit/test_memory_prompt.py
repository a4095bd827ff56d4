"""Memory files in the system prompt: what a workspace cannot smuggle in."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodad.tools.memory import memory_prompt

SECRET = "the operator's private notes"


@pytest.fixture(autouse=True)
def no_global_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODAD_GLOBAL_MEMORY", str(tmp_path / "global" / "MEMORY.md"))


def test_a_workspace_without_memory_has_no_memory_section(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert memory_prompt(str(workspace)) == ""
    (workspace / ".kodad").mkdir()
    (workspace / ".kodad" / "MEMORY.md").write_text("- build with make\n")
    assert "build with make" in memory_prompt(str(workspace))


def test_memory_behind_a_symlinked_kodad_directory_stays_out(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (outside / "MEMORY.md").write_text(SECRET)
    (workspace / ".kodad").symlink_to(outside)
    # A plain lookup finds the file; reading beneath the workspace refuses the link.
    assert (workspace / ".kodad" / "MEMORY.md").is_file()
    assert SECRET not in memory_prompt(str(workspace))


def test_a_memory_file_hard_linked_to_a_file_outside_stays_out(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "private.md"
    (workspace / ".kodad").mkdir(parents=True)
    outside.write_text(SECRET)
    (workspace / ".kodad" / "MEMORY.md").hardlink_to(outside)  # the plain lookup finds it
    assert SECRET not in memory_prompt(str(workspace))
