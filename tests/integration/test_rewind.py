"""Checkpoints and rewinds through a real server: a turn that changes the workspace with file
tools and with shell commands, then rewound byte for byte (modes too), its history cut, the
rewind undone; conflicts with outside edits; files too large to keep."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kodad.client import KodadError
from kodad.config import ServerConfig
from kodad.engine.snapshots import Limits
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import (
    assert_history_valid,
    create_session,
    kind,
    messages,
    run_turn,
    scripted,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mode, `.git` aside."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".git"):
            out[rel] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


@pytest.fixture
async def small_files(server_config: ServerConfig) -> AsyncIterator[Stub]:
    """A server whose checkpoints keep files of at most 4 KB."""
    engine = dataclasses.replace(server_config.engine, snapshot_limits=Limits(max_file_bytes=4096))
    config = dataclasses.replace(server_config, engine=engine)
    async with Server(config) as server, grpc.aio.insecure_channel(server.address) as ch:
        yield pb_grpc.SessionServiceStub(ch)


def rewind(session_id: str, turn_id: str, **fields: bool) -> pb.RewindSessionRequest:
    return pb.RewindSessionRequest(session_id=session_id, to_turn_id=turn_id, **fields)


async def test_a_turn_of_file_tools_and_commands_is_rewound_exactly_and_undone(
    stub: Stub, workspace: Path
) -> None:
    (workspace / "src" / "pkg").mkdir(parents=True)
    (workspace / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (workspace / "run.sh").write_text("#!/bin/sh\necho old\n")
    (workspace / "run.sh").chmod(0o755)
    (workspace / "gone.txt").write_text("delete me\n")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[core]\n")
    provider = scripted(
        [{"text": "first turn"}],
        [tool_call("write_file", "w", path="notes.md", content="# notes\n")],
        [tool_call("bash", "s", command="sed -i 's/old/new/' run.sh && chmod 700 run.sh")],
        [tool_call("bash", "n", command="echo scratch > untracked.tmp && rm gone.txt")],
        [tool_call("bash", "m", command="mv src/pkg src/lib")],
        [{"text": "done"}],
    )
    session = await create_session(stub, workspace, provider)
    await run_turn(stub, session.id, "look around")
    before = tree(workspace)
    events = await run_turn(stub, session.id, "change things")
    turn_id = events[0].turn_id
    after = tree(workspace)
    assert after != before and "untracked.tmp" in after and "src/lib/mod.py" in after

    # What the commands changed is known like what the file tools changed.
    changed = {
        (e.file_changed.path, e.file_changed.change) for e in events if kind(e) == "file_changed"
    }
    assert changed >= {
        ("notes.md", epb.FILE_CHANGE_KIND_CREATED),
        ("run.sh", epb.FILE_CHANGE_KIND_MODIFIED),
        ("untracked.tmp", epb.FILE_CHANGE_KIND_CREATED),
        ("gone.txt", epb.FILE_CHANGE_KIND_DELETED),
        ("src/pkg/mod.py", epb.FILE_CHANGE_KIND_DELETED),
        ("src/lib/mod.py", epb.FILE_CHANGE_KIND_CREATED),
    }, [(kind(e), e.seq, e.turn_id) for e in events]  # what came instead, if it fails
    listed = await stub.ListFileChanges(pb.ListFileChangesRequest(session_id=session.id))
    assert {c.path for c in listed.changes} >= {"run.sh", "untracked.tmp", "src/lib/mod.py"}
    diff = [e.turn_diff for e in events if kind(e) == "turn_diff"]
    assert len(diff) == 1 and events[-2].HasField("turn_diff")  # right before turn_ended
    stats = {f.path: (f.lines_added, f.lines_removed) for f in diff[0].files}
    assert stats["run.sh"] == (1, 1) and stats["notes.md"] == (1, 0)
    whole = await stub.GetTurnDiff(pb.GetTurnDiffRequest(session_id=session.id, turn_id=turn_id))
    assert "-echo old\n+echo new\n" in whole.unified_diff
    assert "+++ b/notes.md" in whole.unified_diff

    count = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    reply = await stub.RewindSession(rewind(session.id, turn_id, files=True, history=True))
    rewound = reply.rewound
    assert tree(workspace) == before  # byte for byte, modes included
    assert (workspace / ".git" / "config").read_text() == "[core]\n"  # never touched
    assert set(rewound.restored_files) >= {"notes.md", "run.sh", "untracked.tmp", "gone.txt"}
    assert rewound.messages_removed == count.message_count - 2
    history = await messages(stub, session.id)
    assert [m.text for m in history] == ["look around", "first turn"]
    log = await stub.GetSession(pb.GetSessionRequest(session_id=session.id))
    assert log.session.message_count == 2

    undone = (await stub.UnrewindSession(pb.UnrewindSessionRequest(session_id=session.id))).rewound
    assert undone.undone
    assert tree(workspace) == after
    history = await messages(stub, session.id)
    assert len(history) == count.message_count
    assert_history_valid(history)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.UnrewindSession(pb.UnrewindSessionRequest(session_id=session.id))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    got = await stub.GetSession(pb.GetSessionRequest(session_id=session.id))
    assert got.session.state == spb.SESSION_STATE_IDLE


async def test_an_outside_edit_is_a_conflict_unless_forced(stub: Stub, workspace: Path) -> None:
    (workspace / "a.txt").write_text("original\n")
    provider = scripted([tool_call("bash", command="echo kodad > a.txt")], [{"text": "ok"}])
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "edit")
    (workspace / "a.txt").write_text("the user's own edit\n")  # outside kodad, after the turn
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await stub.RewindSession(rewind(session.id, events[0].turn_id, files=True))
    assert conflict.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = KodadError.of(conflict.value)
    assert info.reason == "CHECKPOINT_CONFLICT" and info.metadata["paths"] == "a.txt"
    assert (workspace / "a.txt").read_text() == "the user's own edit\n"  # not overwritten
    await stub.RewindSession(rewind(session.id, events[0].turn_id, files=True, force=True))
    assert (workspace / "a.txt").read_text() == "original\n"


async def test_a_file_too_large_to_keep_is_reported_and_left_alone(
    small_files: Stub, workspace: Path
) -> None:
    stub = small_files
    (workspace / "dataset.bin").write_bytes(os.urandom(10_000))
    big = (workspace / "dataset.bin").read_bytes()
    provider = scripted(
        [tool_call("bash", command="echo new > small.txt && head -c 100 /dev/zero >> dataset.bin")],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "go")
    taken = [e.checkpoint_taken for e in events if kind(e) == "checkpoint_taken"]
    assert taken and all("dataset.bin" in t.skipped_paths for t in taken)
    await stub.RewindSession(rewind(session.id, events[0].turn_id, files=True))
    assert not (workspace / "small.txt").exists()
    assert (workspace / "dataset.bin").read_bytes() == big + b"\0" * 100  # as it was left


async def test_rewinds_are_refused_while_a_turn_runs_and_need_a_target(
    stub: Stub, workspace: Path
) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "x"}]))
    for bad in (
        pb.RewindSessionRequest(session_id=session.id, files=True),
        pb.RewindSessionRequest(session_id=session.id, to_turn_id="t_x"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RewindSession(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.RewindSession(rewind(session.id, "t_unknown", files=True))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_fork_at_a_turn_with_its_own_copy_of_the_workspace(
    stub: Stub, workspace: Path, tmp_path: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", "w1", path="a.txt", content="one\n")],
        [{"text": "wrote one"}],
        [tool_call("bash", "b", command="echo two > a.txt && touch later.txt")],
        [{"text": "wrote two"}],
    )
    session = await create_session(stub, workspace, provider)
    first = await run_turn(stub, session.id, "write one")
    await run_turn(stub, session.id, "write two")
    copy = tmp_path / "fork-copy"
    request = pb.ForkSessionRequest(
        session_id=session.id, at_turn_id=first[0].turn_id, workspace_copy=str(copy)
    )
    fork = (await stub.ForkSession(request)).session
    assert fork.workspace == str(copy) and fork.message_count == 4  # the first turn's
    history = await messages(stub, fork.id)
    assert {m.turn_id for m in history} == {first[0].turn_id}
    assert history[-1].text == "wrote one"
    assert (copy / "a.txt").read_text() == "one\n" and not (copy / "later.txt").exists()
    assert (workspace / "a.txt").read_text() == "two\n"  # the source is untouched
    with pytest.raises(grpc.aio.AioRpcError) as exists:
        await stub.ForkSession(request)
    assert exists.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_rewind_to_a_checkpoint_inside_a_turn(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [tool_call("bash", "one", command="echo 1 > one.txt")],
        [tool_call("bash", "two", command="echo 2 > two.txt")],
        [{"text": "both"}],
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "write two files")
    after_one = next(
        e for e in events if kind(e) == "checkpoint_taken" and e.checkpoint_taken.call_id == "one"
    )
    request = pb.RewindSessionRequest(
        session_id=session.id, to_seq=after_one.seq, files=True, history=True
    )
    rewound = (await stub.RewindSession(request)).rewound
    assert rewound.to_seq == after_one.seq and rewound.restored_files == ["two.txt"]
    assert (workspace / "one.txt").read_text() == "1\n" and not (workspace / "two.txt").exists()
    history = await messages(stub, session.id)
    assert [m.role for m in history] == [
        spb.MESSAGE_ROLE_USER, spb.MESSAGE_ROLE_ASSISTANT, spb.MESSAGE_ROLE_TOOL,
    ]  # fmt: skip
