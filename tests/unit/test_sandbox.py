"""The sandbox's mounts, run for real: what a command sees of a host directory the sandbox
shows, of the private paths inside it, and of its own workspace below a masked root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kodad.tools.sandbox import Confinement, Sandbox
from tests.helpers import require_sandbox


@pytest.fixture(autouse=True)
def bubblewrap() -> None:
    """These tests are about the sandbox: make test requires it, so CI fails, not skips."""
    require_sandbox()


def run(sandbox: Sandbox, workspace: Path, command: str, write: bool = False) -> str:
    argv = sandbox.command(
        ["/bin/bash", "-c", command], workspace=workspace, confinement=Confinement(write=write)
    )
    done = subprocess.run(
        argv, env=sandbox.environment(""), capture_output=True, text=True, timeout=30
    )
    return done.stdout + done.stderr


def test_a_workspace_below_a_masked_root_is_seen_and_its_neighbours_are_not(
    tmp_path: Path,
) -> None:
    shown = tmp_path / "opt"  # stands for a system directory the sandbox shows
    roots = shown / "roots"
    mine, theirs = roots / "acme" / "ws", roots / "other" / "ws"
    for directory in (mine, theirs):
        directory.mkdir(parents=True)
        (directory / "file.txt").write_text(f"content of {directory.parent.name}")
    (shown / "tool.txt").write_text("tool")
    secret = mine / ".data"
    secret.mkdir()
    (secret / "db").write_text("private")
    sandbox = Sandbox.detect(hidden=(roots, secret), readable=(shown,))
    out = run(sandbox, mine, f"cat file.txt {shown}/tool.txt; cat {theirs}/file.txt; ls .data")
    assert "content of acme" in out and "tool" in out  # its workspace, what the system shows
    assert "content of other" not in out and "No such file" in out  # not another tenant's
    assert "db" not in out.split()
    # Writable when the call may write, never outside the workspace.
    out = run(sandbox, mine, f"echo x > new.txt; echo y > {shown}/tool.txt", write=True)
    assert (mine / "new.txt").read_text() == "x\n"
    assert (shown / "tool.txt").read_text() == "tool" and "Read-only" in out
