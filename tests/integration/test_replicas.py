"""Three kodad replicas (real processes) on one PostgreSQL database: any replica serves reads,
watches and commands; one owns a running turn; SIGKILL of the owner hands the turn's end to
another replica within the lease period, with nothing committed lost."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodad.config import ServerConfig
from kodad.domain.events import (
    ApprovalRequested,
    ApprovalResolved,
    ContextUsage,
    Event,
    EventPayload,
    LoopCapReached,
    TextDelta,
    ToolCallFinished,
    UserQuestion,
)
from kodad.domain.model import Decision, Message, Role, SessionRecord
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from kodad.store.base import LeaseHeld, StaleLease
from kodad.store.postgres import PostgresStore
from kodad.store.postgres_schema import MIGRATIONS
from kodad.tools.shell import kill_orphans
from tests.helpers import (
    Turn,
    assert_history_valid,
    create_session,
    finished_calls,
    kind,
    messages,
    scripted,
    start,
    tool_call,
)
from tests.pg import PostgresCluster

LEASE_TTL_S = 2.0


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    address: str
    stub: pb_grpc.SessionServiceStub
    channel: grpc.aio.Channel


def launch(name: str, dsn: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    argv = [
        sys.executable, "-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--ready-json",
        "--store", dsn, "--replica-id", name, "--lease-ttl", str(LEASE_TTL_S),
        "--data-dir", str(data_dir / name),
        # Checkpoints in one directory every replica reaches, as the workspaces are.
        "--snapshot-dir", str(data_dir / "snapshots"),
    ]  # fmt: skip
    with open(data_dir / f"{name}.log", "wb") as log:  # kept for a failing test's report
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    return process, ready["address"]


@pytest.fixture
async def replicas(postgres: PostgresCluster, tmp_path: Path) -> AsyncIterator[list[Replica]]:
    dsn = await postgres.new_database()
    started: list[Replica] = []
    try:
        for i in range(3):
            process, address = launch(f"r{i + 1}", dsn, tmp_path)
            channel = grpc.aio.insecure_channel(address)
            stub = pb_grpc.SessionServiceStub(channel)
            started.append(Replica(f"r{i + 1}", process, address, stub, channel))
        yield started
    finally:
        for replica in started:
            await replica.channel.close()
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
                try:
                    replica.process.wait(30)
                except subprocess.TimeoutExpired:
                    replica.process.kill()
                    log = (tmp_path / f"{replica.name}.log").read_text()[-3000:]
                    pytest.fail(f"{replica.name} did not stop on SIGTERM:\n{log}")


async def watch_until_turn_ended(
    stub: pb_grpc.SessionServiceStub, session_id: str, after_seq: int = 0
) -> list[epb.EngineEvent]:
    events: list[epb.EngineEvent] = []
    call = stub.WatchSession(pb.WatchSessionRequest(session_id=session_id, after_seq=after_seq))
    async for response in call:
        events.append(response.event)
        if kind(response.event) == "turn_ended":
            break
    call.cancel()
    return events


async def get(stub: pb_grpc.SessionServiceStub, session_id: str) -> spb.Session:
    return (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session


async def test_any_replica_reads_watches_and_answers_a_turn_another_one_runs(
    replicas: list[Replica], workspace: Path
) -> None:
    r1, r2, r3 = replicas
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="A")], [{"text": "written"}]
    )
    session = await create_session(r1.stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    turn = Turn(r1.stub)
    await turn.send(start(session.id, "write a.txt"))
    asked = (await turn.until("approval_requested")).approval_requested

    seen = await get(r2.stub, session.id)  # reads on any replica
    assert seen.state == spb.SESSION_STATE_RUNNING and seen.active_turn_id
    with pytest.raises(grpc.aio.AioRpcError) as err:  # one owner
        second = Turn(r2.stub)
        await second.send(start(session.id, "again"))
        await second.next()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "on replica r1" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:  # nor deleted under the owner's feet
        await r2.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A client attaching on r3 after the question is re-sent it first (read from the log).
    asked_event = turn.events[-1]
    late = r3.stub.WatchSession(
        pb.WatchSessionRequest(session_id=session.id, after_seq=asked_event.seq)
    )
    assert (await late.read()).event == asked_event
    late.cancel()
    watcher = r3.stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
    watched = []
    async for response in watcher:  # replayed from the database, then live
        watched.append(response.event)
        if kind(response.event) == "approval_requested":
            break
    answer = epb.EngineCommand(
        approval_decision=epb.ApprovalDecision(
            request_id=asked.request_id, decision=epb.DECISION_APPROVE
        )
    )
    reply = await r2.stub.SubmitCommand(
        pb.SubmitCommandRequest(session_id=session.id, command=answer)
    )
    assert reply.turn_id == seen.active_turn_id
    events = await turn.finish()
    async for response in watcher:  # live events of r1's turn, on r3
        watched.append(response.event)
        if kind(response.event) == "turn_ended":
            break
    watcher.cancel()
    assert [e.seq for e in watched] == [e.seq for e in events]
    assert [kind(e) for e in watched] == [kind(e) for e in events]
    assert (workspace / "a.txt").read_text() == "A"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await r3.stub.SubmitCommand(pb.SubmitCommandRequest(session_id=session.id, command=answer))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for replica in replicas:
        assert (await get(replica.stub, session.id)).state == spb.SESSION_STATE_IDLE


async def test_killing_the_owner_mid_turn_hands_the_turn_to_another_replica(
    replicas: list[Replica], workspace: Path
) -> None:
    r1, r2, r3 = replicas
    provider = scripted(
        [{"text": "Let me wait. "}, tool_call("bash", "slow", command="sleep 120")],
        [{"text": "after the failover"}],
    )
    session = await create_session(r1.stub, workspace, provider)
    turn = Turn(r1.stub)
    await turn.send(start(session.id, "wait a while"))
    started = await turn.until("tool_call_started")
    before = await messages(r2.stub, session.id)  # committed: the input and the tool call
    r1.process.kill()  # SIGKILL: no goodbye, the lease stops being renewed
    r1.process.wait()
    try:
        await check_the_takeover(r2, r3, session.id, before)
    finally:
        kill_orphans({started.turn_id})  # the sleep r1 left (it runs on this host too)


async def check_the_takeover(
    r2: Replica, r3: Replica, session_id: str, before: list[spb.Message]
) -> None:
    events = await watch_until_turn_ended(r2.stub, session_id)
    ended = events[-1].turn_ended
    assert (ended.reason, ended.error_code) == (epb.TURN_END_REASON_FAILED, "owner_lost")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # gap-free
    assert finished_calls(events)["slow"].is_error
    history = await messages(r3.stub, session_id)
    assert history[: len(before)] == before  # nothing committed is lost
    assert_history_valid(history)
    for replica in (r2, r3):
        assert (await get(replica.stub, session_id)).state == spb.SESSION_STATE_IDLE

    # The session goes on from any replica, its log continuing where it was.
    next_turn = Turn(r3.stub)
    await next_turn.send(start(session_id, "go on"))
    more = await next_turn.finish()
    assert more[0].seq == events[-1].seq + 1
    assert more[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_a_paused_owner_that_lost_its_lease_ends_its_stream_aborted(
    replicas: list[Replica], workspace: Path
) -> None:
    r1, r2, _ = replicas
    provider = scripted([tool_call("write_file", "w", path="late.txt", content="x")])
    session = await create_session(r1.stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    turn = Turn(r1.stub)
    await turn.send(start(session.id, "write"))
    await turn.until("approval_requested")
    r1.process.send_signal(signal.SIGSTOP)  # a pause longer than the lease
    try:
        events = await watch_until_turn_ended(r2.stub, session.id)
    finally:
        r1.process.send_signal(signal.SIGCONT)
    assert events[-1].turn_ended.error_code == "owner_lost"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await turn.until("turn_ended")
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "another replica took session" in (err.value.details() or "")
    # Nothing of r1's after the takeover reached the log.
    assert (await get(r2.stub, session.id)).last_seq == events[-1].seq
    assert not (workspace / "late.txt").exists()


async def test_a_stale_owner_cannot_write_after_a_takeover(postgres: PostgresCluster) -> None:
    dsn = await postgres.new_database()
    a = PostgresStore(dsn, replica_id="a", lease_ttl_s=60)
    b = PostgresStore(dsn, replica_id="b", lease_ttl_s=60)
    await a.open()
    await b.open()
    try:
        await a.create_session(SessionRecord(id="s_1", workspace="/w"))
        token_a = await a.cluster.acquire_lease("s_1", "t_1")
        with pytest.raises(LeaseHeld, match="running turn t_1 on replica a"):
            await b.cluster.acquire_lease("s_1", "t_2")
        await a.append_message("s_1", Message(Role.USER, "t_1", text="mine"))
        # a stops renewing (a pause, a partition): its lease expires and b takes over.
        await a.pool.execute("UPDATE leases SET expires_at = now() - interval '1 second'")
        token_b = await b.cluster.acquire_lease("s_1", "t_1")
        assert token_b == token_a + 1
        with pytest.raises(StaleLease):
            await a.append_message("s_1", Message(Role.USER, "t_1", text="stale"))
        # A batch of events is fenced whole: one stale session in it and none of it is stored.
        await a.create_session(SessionRecord(id="s_2", workspace="/w"))
        await a.cluster.acquire_lease("s_2", "t_9")
        batch = [Event(sid, "t_1", 1, 1, TextDelta("x")) for sid in ("s_1", "s_2")]
        with pytest.raises(StaleLease, match="s_1"):
            await a.append_events(batch)
        assert await a.list_events("s_2", after_seq=0, limit=10) == []
        await a.append_events(batch[1:])
        assert await b.list_events("s_2", after_seq=0, limit=10) == batch[1:]
        await b.append_message("s_1", Message(Role.USER, "t_1", text="new owner"))
        await a.cluster.release_lease("s_1", token_a)  # a's release does not free b's lease
        with pytest.raises(LeaseHeld, match="on replica b"):
            await a.cluster.acquire_lease("s_1", "t_3")
        assert [m.text for m in await b.list_messages("s_1")] == ["mine", "new owner"]
    finally:
        await a.close()
        await b.close()


async def test_replicas_starting_together_migrate_the_database_once(
    postgres: PostgresCluster,
) -> None:
    dsn = await postgres.new_database()
    stores = [PostgresStore(dsn, replica_id=f"r{i}") for i in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        versions = await stores[0].pool.fetch("SELECT version FROM kodad_schema ORDER BY 1")
        assert [r["version"] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
        await stores[1].create_session(SessionRecord(id="s_1", workspace="/w"))
        assert await stores[2].get_session("s_1") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_replicas_health_follows_its_database_and_it_listens_again_after(
    tmp_path: Path, workspace: Path
) -> None:
    database = PostgresCluster()  # its own server: this test stops it
    database.start()
    try:
        config = ServerConfig(
            listen="127.0.0.1:0", data_dir=tmp_path, store=database.dsn(), lease_ttl_s=1.5
        )
        async with (
            Server(dataclasses.replace(config, replica_id="a")) as a,
            Server(dataclasses.replace(config, replica_id="b")) as b,
            grpc.aio.insecure_channel(a.address) as channel_a,
            grpc.aio.insecure_channel(b.address) as channel_b,
        ):
            health = health_pb2_grpc.HealthStub(channel_b)
            watch = health.Watch(health_pb2.HealthCheckRequest(service="koda.v1.SessionService"))
            statuses = aiter(watch)
            serving, not_serving = (
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.NOT_SERVING,
            )
            assert (await anext(statuses)).status == serving
            database.stop_server()
            assert (await anext(statuses)).status == not_serving
            database.start_server()
            assert (await anext(statuses)).status == serving
            watch.cancel()

            # Notifications flow again: b follows live what a's turn does after b attached
            # (the turn's second half comes 1.5 s after its first).
            stub_a = pb_grpc.SessionServiceStub(channel_a)
            stub_b = pb_grpc.SessionServiceStub(channel_b)
            paced = scripted([{"text": "one "}, {"delay_ms": 1500}, {"text": "two"}])
            session = await create_session(stub_a, workspace, paced)
            turn = Turn(stub_a)
            await turn.send(start(session.id, "hello"))
            await turn.until("text_delta")
            followed = stub_b.WatchSession(pb.WatchSessionRequest(session_id=session.id))
            seen = [(await followed.read()).event]
            while kind(seen[-1]) != "turn_ended":
                seen.append((await followed.read()).event)
            followed.cancel()
            events = await turn.finish()
            assert [e.seq for e in seen] == [e.seq for e in events]
    finally:
        database.stop()


async def test_open_requests_are_read_back_from_the_log(postgres: PostgresCluster) -> None:
    store = PostgresStore(await postgres.new_database())
    await store.open()
    try:
        await store.create_session(SessionRecord(id="s_1", workspace="/w"))
        payloads: list[tuple[EventPayload, str]] = [
            (ApprovalRequested("r1", "w", "write_file", "{}", "write", ""), ""),
            (ApprovalResolved("r1", Decision.APPROVE), ""),
            (ApprovalRequested("r2", "w", "write_file", "{}", "write", ""), "s_child"),
            (UserQuestion("q1", "w", "which?"), ""),
            (ToolCallFinished("w", "done"), "s_child"),  # the child's call "w", not ours
            (LoopCapReached(3, 3), ""),
        ]
        events = [
            Event("s_1", "t_1", i + 1, i, p, child, "a" if child else "")
            for i, (p, child) in enumerate(payloads)
        ]
        await store.append_events(events)
        assert await store.cluster.open_requests("s_1", "t_1") == [events[2], events[3], events[5]]
        await store.append_events([Event("s_1", "t_1", 7, 7, ContextUsage(1, 2))])
        assert await store.cluster.open_requests("s_1", "t_1") == [events[2], events[3]]
    finally:
        await store.close()


async def test_steers_and_queued_turns_from_other_replicas_reach_the_owner(
    replicas: list[Replica], workspace: Path
) -> None:
    r1, r2, r3 = replicas
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="A")],
        [{"text": "first done"}],
        [{"text": "queued done"}],
    )
    session = await create_session(r1.stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    turn = Turn(r1.stub)
    await turn.send(start(session.id, "write a.txt"))
    asked = (await turn.until("approval_requested")).approval_requested
    # A steer through r2 reaches r1's turn.
    steer = epb.EngineCommand(steer=epb.Steer(text="and be brief"))
    reply = await r2.stub.SubmitCommand(
        pb.SubmitCommandRequest(session_id=session.id, command=steer)
    )
    assert reply.turn_id == turn.events[0].turn_id
    # A prompt queued on r3: r1 (the log's writer) announces it; r3's stream follows it.
    queued = Turn(r3.stub)
    await queued.send(
        pb.RunTurnRequest(
            command=epb.EngineCommand(
                start_turn=epb.StartTurn(
                    session_id=session.id, text="then this", when_busy=epb.WHEN_BUSY_ENQUEUE
                )
            )
        )
    )
    announced = await queued.next()
    assert kind(announced) == "turn_queued"
    assert [q.text for q in (await get(r2.stub, session.id)).queued_turns] == ["then this"]
    await turn.send(
        pb.RunTurnRequest(
            command=epb.EngineCommand(
                approval_decision=epb.ApprovalDecision(
                    request_id=asked.request_id, decision=epb.DECISION_APPROVE
                )
            )
        )
    )
    first = await turn.finish()
    assert [e.user_input_added.text for e in first if kind(e) == "user_input_added"] == [
        "and be brief"
    ]
    second = await queued.finish()
    assert {e.turn_id for e in second} == {announced.turn_id}
    assert second[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    history = await messages(r2.stub, session.id)
    users = [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER]
    assert users == ["write a.txt", "and be brief", "then this"]
    assert_history_valid(history)


async def test_a_turn_run_on_one_replica_is_rewound_through_another(
    replicas: list[Replica], workspace: Path
) -> None:
    r1, r2, _ = replicas
    (workspace / "a.txt").write_text("before\n")
    provider = scripted(
        [tool_call("bash", "b", command="echo after > a.txt && touch new.txt")], [{"text": "ok"}]
    )
    session = await create_session(r1.stub, workspace, provider)
    turn = Turn(r1.stub)
    await turn.send(start(session.id, "change"))
    events = await turn.finish()
    assert (workspace / "a.txt").read_text() == "after\n"
    request = pb.RewindSessionRequest(
        session_id=session.id, to_turn_id=events[0].turn_id, files=True, history=True
    )
    rewound = (await r2.stub.RewindSession(request)).rewound
    assert sorted(rewound.restored_files) == ["a.txt", "new.txt"]
    assert (workspace / "a.txt").read_text() == "before\n" and not (workspace / "new.txt").exists()
    assert (await get(r1.stub, session.id)).message_count == 0
    watched = await watch_until_rewound(r1.stub, session.id)
    assert watched.session_rewound.restored_files == rewound.restored_files  # one log
    await r1.stub.UnrewindSession(pb.UnrewindSessionRequest(session_id=session.id))
    assert (workspace / "new.txt").exists()


async def watch_until_rewound(stub: pb_grpc.SessionServiceStub, session_id: str) -> epb.EngineEvent:
    call = stub.WatchSession(pb.WatchSessionRequest(session_id=session_id))
    async for response in call:
        if kind(response.event) == "session_rewound":
            call.cancel()
            return response.event
    raise AssertionError("no session_rewound event")
