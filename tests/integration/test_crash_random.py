"""SIGKILL at random points, again and again, on SQLite and on PostgreSQL.

Sessions with approvals, bash, a sub-agent and ask_user run turns while the service is killed
after a random number of events reached the clients (sometimes right after a turn_started),
and sometimes again while the next process is still recovering. After every kill every
session's log must hold the invariant: gap-free seqs, every turn_started ended, every
tool_call_started finished, every stored file change announced, a valid history; SQLite's
integrity_check passes; and at the end a new turn runs on every session.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.helpers import (
    assert_history_valid,
    create_session,
    decide,
    kind,
    messages,
    scripted,
    start,
    stored_events,
    tool_call,
)
from tests.kodad_process import KodadProcess
from tests.pg import PostgresCluster

Stub = pb_grpc.SessionServiceStub
KILLS = 20
ROUNDS = 400  # enough alternating rounds for every turn the test runs


def _alternating(tool_round: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Tool rounds and answers, alternating: whichever round a session is at is valid."""
    return [tool_round if i % 2 == 0 else [{"text": "ok"}] for i in range(ROUNDS)]


def _sessions(workspace: Path) -> dict[str, tuple[spb.ProviderConfig, int]]:
    agents = workspace / ".kodad" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / "helper.json").write_text(json.dumps({"name": "helper", "description": "helps"}))
    loop = "for i in $(seq 1 50); do echo line $i; done; echo done > out.txt"
    return {
        "approvals": (
            scripted(*_alternating([tool_call("write_file", path="a.txt", content="A\n")])),
            spb.APPROVAL_MODE_CONFIRM,
        ),
        "bash": (
            scripted(*_alternating([tool_call("bash", command=loop)])),
            spb.APPROVAL_MODE_AUTO,
        ),
        "subagent": (
            scripted(
                *_alternating([tool_call("invoke_agent", agent="helper", task="write b.txt")]),
                helper=[[tool_call("write_file", path="b.txt", content="B\n")], [{"text": "done"}]],
            ),
            spb.APPROVAL_MODE_AUTO,
        ),
        "ask": (
            scripted(*_alternating([tool_call("ask_user", question="which?", choices=["x", "y"])])),
            spb.APPROVAL_MODE_AUTO,
        ),
    }


class Spawned:
    """`kodad serve` started without waiting for it to serve (to kill it mid-recovery)."""

    def __init__(self, data_dir: Path, extra: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kodad", "serve", "--listen", "127.0.0.1:0",
             "--data-dir", str(data_dir), *extra],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def kill_when_logged(self, text: str) -> bool:
        """Kills the process once a log line holds `text`; False if it served first."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if text in line or "serving on" in line:
                self.process.kill()
                self.process.wait(timeout=30)
                return text in line
        self.process.wait(timeout=30)
        return False


async def _drive(
    stub: Stub, session_id: str, seen: list[int], enough: asyncio.Event, *, turns: int = 10**6
) -> None:
    """Runs turns on the session, answering every question, until the service goes away
    (or `turns` turns ended)."""
    try:
        for _ in range(turns):
            if enough.is_set():
                return
            call = stub.RunTurn()
            await call.write(start(session_id, "work"))
            async for response in call:
                event = response.event
                seen.append(1)
                if len(seen) >= seen[0] or (event.HasField("turn_started") and len(seen) % 7 == 0):
                    enough.set()  # the kill point
                if event.HasField("approval_requested"):
                    await call.write(
                        decide(event.approval_requested.request_id, epb.DECISION_APPROVE)
                    )
                elif event.HasField("user_question"):
                    answer = epb.UserAnswer(request_id=event.user_question.request_id, text="x")
                    await call.write(
                        pb.RunTurnRequest(command=epb.EngineCommand(user_answer=answer))
                    )
                elif event.HasField("loop_cap_reached"):
                    stop = epb.LoopDecision(action=epb.LOOP_ACTION_STOP)
                    await call.write(
                        pb.RunTurnRequest(command=epb.EngineCommand(loop_decision=stop))
                    )
                if event.HasField("turn_ended"):
                    await call.done_writing()
    except grpc.aio.AioRpcError:
        return  # the service was killed under the stream


async def _check(stub: Stub, session_id: str) -> None:
    session = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    assert session.state == spb.SESSION_STATE_IDLE, session
    events = await stored_events(stub, session_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    started = Counter(e.turn_id for e in events if kind(e) == "turn_started")
    ended = Counter(e.turn_id for e in events if kind(e) == "turn_ended")
    assert started == ended, (started, ended)
    calls = Counter(
        (e.subagent_session_id, e.tool_call_started.call_id)
        for e in events
        if kind(e) == "tool_call_started"
    )
    finished = Counter(
        (e.subagent_session_id, e.tool_call_finished.call_id)
        for e in events
        if kind(e) == "tool_call_finished"
    )
    assert calls == finished, (calls, finished)
    announced = Counter(
        (e.turn_id, e.file_changed.path)
        for e in events
        if kind(e) == "file_changed" and not e.subagent_session_id
    )
    changes = await stub.ListFileChanges(
        pb.ListFileChangesRequest(session_id=session_id, page_size=1000)
    )
    stored = Counter((c.turn_id, c.path) for c in changes.changes)
    assert stored == announced, (stored, announced)
    assert_history_valid(await messages(stub, session_id))


async def _crash_again_and_again(
    data_dir: Path, workspace: Path, extra: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    sessions: dict[str, str] = {}
    for round_number in range(KILLS):
        process = KodadProcess(data_dir, *extra)
        try:
            async with grpc.aio.insecure_channel(process.address) as channel:
                stub = pb_grpc.SessionServiceStub(channel)
                if not sessions:
                    for name, (provider, mode) in _sessions(workspace).items():
                        sessions[name] = (await create_session(stub, workspace, provider, mode)).id
                for session_id in sessions.values():
                    await _check(stub, session_id)
                seen = [rng.randint(2, 80)]  # seen[0]: the kill point, in events received
                enough = asyncio.Event()
                drivers = [
                    asyncio.create_task(_drive(stub, s, seen, enough)) for s in sessions.values()
                ]
                await enough.wait()
                process.kill()
                await asyncio.gather(*drivers)
        finally:
            process.close()
        if round_number % 4 == 3:  # kill the next process too, while it recovers
            Spawned(data_dir, extra).kill_when_logged("was interrupted")
        if not extra:
            database = sqlite3.connect(data_dir / "kodad.db")
            assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            database.close()
    process = KodadProcess(data_dir, *extra)
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            for session_id in sessions.values():
                await _check(stub, session_id)
                await _drive(stub, session_id, [10**9], asyncio.Event(), turns=1)
                await _check(stub, session_id)
    finally:
        process.close()


@pytest.fixture
def kill_seed() -> Iterator[int]:
    """Random each run (printed; KODAD_CRASH_SEED replays one)."""
    yield int(os.environ.get("KODAD_CRASH_SEED") or random.SystemRandom().randrange(10**6))


@pytest.mark.timeout(300)
async def test_random_sigkills_on_sqlite_leave_every_log_consistent(
    tmp_path: Path, workspace: Path, kill_seed: int
) -> None:
    print(f"seed {kill_seed}")
    await _crash_again_and_again(tmp_path / "data", workspace, [], kill_seed)


@pytest.mark.timeout(300)
async def test_random_sigkills_on_postgres_leave_every_log_consistent(
    tmp_path: Path, workspace: Path, postgres: PostgresCluster, kill_seed: int
) -> None:
    print(f"seed {kill_seed}")
    dsn = await postgres.new_database()
    extra = ["--store", dsn, "--replica-id", "crashy"]
    await _crash_again_and_again(tmp_path / "data", workspace, extra, kill_seed)
