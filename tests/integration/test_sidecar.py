"""Sidecar mode: a parent launches kodad, reads its ready line, drives it with the
per-launch token, and kodad dies with it."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest

from kodad.client import SidecarError, spawn_sidecar
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.tools.shell import processes_of
from tests.helpers import scripted, tool_call

KODAD = [sys.executable, "-m", "kodad"]


def serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*KODAD, "serve", "--data-dir", str(tmp_path / "data"), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_the_ready_line_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    child = serve(tmp_path, "--listen", "127.0.0.1:0", "--ready-json", "--launch-token",
                  "--exit-with-parent")  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    ready = json.loads(child.stdout.readline())  # exactly as an IDE reads it
    assert set(ready) == {"listen", "address", "port", "pid", "version", "token"}
    assert ready["pid"] == child.pid and ready["port"] > 0 and len(ready["token"]) > 20
    assert ready["address"] == f"127.0.0.1:{ready['port']}"
    with grpc.insecure_channel(ready["address"]) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        auth = (("authorization", f"Bearer {ready['token']}"),)
        assert stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=auth).version
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as e:
                stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=metadata)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    child.stdin.close()  # the parent goes away: kodad stops
    assert child.wait(timeout=30) == 0
    assert child.stdout.read() == ""  # nothing but the ready line, ever
    assert "serving on" in (child.stderr.read() if child.stderr else "")


def test_launch_token_from_a_file_descriptor(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, b"my-launch-token\n")
    os.close(write)
    child = subprocess.Popen(
        [*KODAD, "serve", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0", "--ready-json",
         "--launch-token-fd", str(read), "--exit-with-parent"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=(read,),
    )  # fmt: skip
    os.close(read)
    assert child.stdout is not None and child.stdin is not None
    ready = json.loads(child.stdout.readline())
    assert ready["token"] == "my-launch-token"
    child.stdin.close()
    assert child.wait(timeout=30) == 0


@pytest.mark.parametrize("over", ["port", "unix"])
async def test_spawn_sidecar(tmp_path: Path, workspace: Path, over: str) -> None:
    listen = "127.0.0.1:0" if over == "port" else f"unix://{tmp_path}/kodad.sock"
    client = await spawn_sidecar(
        command=KODAD, listen=listen, args=["--data-dir", str(tmp_path / "data")]
    )
    sidecar = client._sidecar
    assert sidecar is not None
    if over == "unix":
        mode = (tmp_path / "kodad.sock").stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    session = await client.create_session(str(workspace))
    text = [e.text_delta.text async for e in client.run_turn(session.id, "hi") if e.text_delta.text]
    assert "".join(text) == "You said: hi"
    await client.close()
    assert sidecar.process.returncode == 0


async def test_spawn_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SidecarError, match="cannot start"):
        await spawn_sidecar(command=[str(tmp_path / "no-such-kodad")])
    with pytest.raises(SidecarError, match=r"exited with code 2.*--tls-cert and --tls-key"):
        await spawn_sidecar(command=KODAD, args=["--tls-cert", str(tmp_path / "c.pem")])


PARENT = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sys.stdout.buffer.write(child.stdout.readline())
    sys.stdout.flush()
    child.wait()
    """
)


def test_kodad_dies_with_its_parent_and_stores_the_turn(tmp_path: Path, workspace: Path) -> None:
    data = tmp_path / "data"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, *KODAD, "serve", "--data-dir", str(data), "--listen",
         "127.0.0.1:0", "--ready-json", "--launch-token", "--exit-with-parent"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    ready = json.loads(parent.stdout.readline())
    kodad = os.pidfd_open(ready["pid"])
    auth = (("authorization", f"Bearer {ready['token']}"),)
    with grpc.insecure_channel(ready["address"]) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
        session.provider.CopyFrom(
            scripted([tool_call("bash", "b", command="echo started; sleep 300")])
        )
        created = stub.CreateSession(pb.CreateSessionRequest(session=session), metadata=auth)
        start = epb.EngineCommand(
            start_turn=epb.StartTurn(
                session_id=created.session.id, text="wait",
                on_disconnect=epb.DISCONNECT_POLICY_CONTINUE,
            )
        )  # fmt: skip
        turn = stub.RunTurn(iter([pb.RunTurnRequest(command=start)]), metadata=auth)
        for response in turn:  # the command runs once it has printed
            if response.event.WhichOneof("payload") == "tool_call_output":
                break
        turn_id = response.event.turn_id
        sleepers = processes_of({turn_id})
        assert sleepers, "the command should be running"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # kodad notices at once (parent-death signal, stdin closed) and drains: within 1 s.
        readable, _, _ = select.select([kodad], [], [], 5.0)
        assert readable, "kodad outlived its parent"
        turn.cancel()
    os.close(kodad)
    assert processes_of({turn_id}) == [], "a command of the turn was left running"
    db = sqlite3.connect(data / "kodad.db")
    ended = db.execute("SELECT reason FROM turns WHERE turn_id = ?", (turn_id,)).fetchone()
    db.close()
    assert ended == ("cancelled",)
