"""Stopping the service at the worst moments: SIGKILL mid-stream and mid-tool, SIGTERM
mid-turn. Every session stays readable and consistent, and the next turn works."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.config import ServerConfig
from kodad.domain.events import Event, ToolCallStarted, TurnStarted
from kodad.domain.model import (
    FileChangeKind,
    Message,
    Role,
    SessionRecord,
    ToolCall,
    ToolResult,
    now_us,
)
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from kodad.store import SqliteStore
from kodad.store.base import TurnRecord
from kodad.tools.shell import processes_of
from tests.helpers import (
    Turn,
    assert_history_valid,
    create_session,
    exits,
    kind,
    kinds,
    messages,
    run_turn,
    scripted,
    start,
    stored_events,
    text_of,
    tool_call,
)
from tests.kodad_process import KodadProcess

BLOCK = {"delay_ms": 600_000}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def processes() -> Iterator[list[KodadProcess]]:
    started: list[KodadProcess] = []
    yield started
    for process in started:
        process.close()


@asynccontextmanager
async def connect(process: KodadProcess) -> AsyncIterator[pb_grpc.SessionServiceStub]:
    async with grpc.aio.insecure_channel(process.address) as channel:
        yield pb_grpc.SessionServiceStub(channel)


async def check_recovered(
    stub: pb_grpc.SessionServiceStub, session_id: str, turn_id: str, reason: int, code: str
) -> list[epb.EngineEvent]:
    session = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    assert session.state == spb.SESSION_STATE_IDLE and session.active_turn_id == ""
    events = await stored_events(stub, session_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert kind(events[0]) == "turn_started"
    ended = events[-1]
    assert (ended.turn_id, kind(ended)) == (turn_id, "turn_ended")
    assert (ended.turn_ended.reason, ended.turn_ended.error_code) == (reason, code)
    history = await messages(stub, session_id)
    assert history[0].text == "do the work"  # the committed user message survived
    assert_history_valid(history)
    return events


async def test_sigkill_while_streaming(
    data_dir: Path, workspace: Path, processes: list[KodadProcess]
) -> None:
    first = KodadProcess(data_dir)
    processes.append(first)
    async with connect(first) as stub:
        session = await create_session(
            stub, workspace, scripted([{"text": "partial"}, BLOCK], [{"text": "recovered"}])
        )
        turn = Turn(stub)
        await turn.send(start(session.id, "do the work"))
        delta = await turn.until("text_delta")
        first.kill()

    second = KodadProcess(data_dir)
    processes.append(second)
    async with connect(second) as stub:
        events = await check_recovered(
            stub, session.id, delta.turn_id, epb.TURN_END_REASON_FAILED, "interrupted"
        )
        assert "service stopped" in events[-1].turn_ended.error_message
        # No assistant message was stored, so round 0 of a script would play again: switch it.
        await stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=spb.Session(id=session.id, provider=scripted([{"text": "recovered"}])),
                update_mask=FieldMask(paths=["provider"]),
            )
        )
        assert text_of(await run_turn(stub, session.id, "next")) == "recovered"


async def test_sigkill_during_a_tool_call(
    data_dir: Path, workspace: Path, processes: list[KodadProcess]
) -> None:
    first = KodadProcess(data_dir)
    processes.append(first)
    command = "sleep 600 & echo started; wait"
    async with connect(first) as stub:
        session = await create_session(
            stub,
            workspace,
            scripted([tool_call("bash", "slow", command=command)], [{"text": "again"}]),
        )
        turn = Turn(stub)
        await turn.send(start(session.id, "do the work"))
        output = await turn.until("tool_call_output")
        # Found as recovery finds them: by the turn each command is marked with.
        left_running = processes_of({output.turn_id})
        assert left_running
        first.kill()

    second = KodadProcess(data_dir)
    processes.append(second)
    async with connect(second) as stub:
        events = await check_recovered(
            stub, session.id, output.turn_id, epb.TURN_END_REASON_FAILED, "interrupted"
        )
        finished = [e.tool_call_finished for e in events if kind(e) == "tool_call_finished"]
        assert [(f.call_id, f.is_error) for f in finished] == [("slow", True)]
        history = await messages(stub, session.id)
        assert history[-1].tool_result.output == "interrupted: the service stopped"
        assert all(exits(pid) for pid in left_running)  # none outlives the service
        assert text_of(await run_turn(stub, session.id, "next")) == "again"


async def test_sigterm_cancels_and_stores_running_turns(
    data_dir: Path, workspace: Path, processes: list[KodadProcess]
) -> None:
    first = KodadProcess(data_dir)
    processes.append(first)
    async with connect(first) as stub:
        session = await create_session(
            stub, workspace, scripted([{"text": "partial"}, BLOCK], [{"text": "fresh"}])
        )
        turn = Turn(stub)
        await turn.send(start(session.id, "do the work"))
        delta = await turn.until("text_delta")
        assert first.terminate() == 0
        # The client saw the turn end, not a broken stream.
        ended = await turn.until("turn_ended")
        assert ended.turn_ended.reason == epb.TURN_END_REASON_CANCELLED

    second = KodadProcess(data_dir)
    processes.append(second)
    async with connect(second) as stub:
        await check_recovered(stub, session.id, delta.turn_id, epb.TURN_END_REASON_CANCELLED, "")
        history = await messages(stub, session.id)
        assert history[-1].text == "partial"
        assert text_of(await run_turn(stub, session.id, "next")) == "fresh"


async def test_sigkill_while_waiting_for_approval_ends_the_turn(
    data_dir: Path, workspace: Path, processes: list[KodadProcess]
) -> None:
    first = KodadProcess(data_dir)
    processes.append(first)
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="a")], [{"text": "after"}]
    )
    async with connect(first) as stub:
        session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
        turn = Turn(stub)
        await turn.send(start(session.id, "do the work"))
        asked = await turn.until("approval_requested")
        first.kill()

    second = KodadProcess(data_dir)
    processes.append(second)
    async with connect(second) as stub:
        events = await check_recovered(
            stub, session.id, asked.turn_id, epb.TURN_END_REASON_FAILED, "interrupted"
        )
        assert asked in events  # the question is in the log, answered by the interruption
        assert (await messages(stub, session.id))[
            -1
        ].tool_result.output == "interrupted: the service stopped"
        approve = epb.EngineCommand(
            approval_decision=epb.ApprovalDecision(
                request_id=asked.approval_requested.request_id, decision=epb.DECISION_APPROVE
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitCommand(
                pb.SubmitCommandRequest(session_id=session.id, command=approve)
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # no turn runs any more
        assert not (workspace / "a.txt").exists()
        assert text_of(await run_turn(stub, session.id, "next")) == "after"


async def test_recovery_completes_a_log_a_crash_cut_short(
    server_config: ServerConfig, workspace: Path
) -> None:
    """What a crash leaves between storing a result (or a file change) and storing the event
    that announces it: recovery appends the missing events, so every tool_call_started has
    its tool_call_finished and every recorded change its file_changed."""
    store = SqliteStore(server_config.database)
    await store.open()
    sid, tid, now = "s_crashcut", "t_crashcut", now_us()
    await store.create_session(SessionRecord(sid, str(workspace), create_time=now, update_time=now))
    await store.begin_turn(TurnRecord(sid, tid, now))
    call = ToolCall("c1", "write_file", '{"path": "a.txt", "content": "A"}')
    await store.append_message(sid, Message(Role.USER, tid, text="do the work"))
    await store.append_message(sid, Message(Role.ASSISTANT, tid, tool_calls=(call,)))
    await store.append_message(
        sid, Message(Role.TOOL, tid, tool_result=ToolResult("c1", "Created a.txt (1 bytes)"))
    )
    await store.record_file_change(sid, tid, "a.txt", FileChangeKind.CREATED, now)
    payloads = [TurnStarted("do the work", 0), ToolCallStarted("c1", call.tool_name, "{}")]
    await store.append_events(
        [Event(sid, tid, seq, now, p) for seq, p in enumerate(payloads, start=1)]
    )
    await store.close()

    async with Server(server_config) as running, grpc.aio.insecure_channel(running.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        events = await check_recovered(stub, sid, tid, epb.TURN_END_REASON_FAILED, "interrupted")
        assert kinds(events) == [
            "turn_started", "tool_call_started", "tool_call_finished", "file_changed", "turn_ended"
        ]  # fmt: skip
        finished = events[2].tool_call_finished
        assert (finished.call_id, finished.output, finished.is_error) == (
            "c1", "Created a.txt (1 bytes)", False,
        )  # fmt: skip
        assert (events[3].file_changed.path, events[3].file_changed.change) == (
            "a.txt", epb.FILE_CHANGE_KIND_CREATED,
        )  # fmt: skip


async def test_a_crash_right_after_turn_started_is_recovered(
    server_config: ServerConfig, workspace: Path
) -> None:
    """The turn_started event reached the client (it was committed), the turn's task never
    ran: the next start ends that turn, so no watcher waits forever."""
    store = SqliteStore(server_config.database)
    await store.open()
    sid, tid, now = "s_crashstart", "t_crashstart", now_us()
    await store.create_session(SessionRecord(sid, str(workspace), create_time=now, update_time=now))
    await store.append_events([Event(sid, tid, 1, now, TurnStarted("do the work", 0))])
    await store.close()
    async with Server(server_config) as running, grpc.aio.insecure_channel(running.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = (await stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
        assert session.state == spb.SESSION_STATE_IDLE
        events = await stored_events(stub, sid)
        assert kinds(events) == ["turn_started", "turn_ended"]
        assert events[-1].turn_ended.error_code == "interrupted"
        assert text_of(await run_turn(stub, sid, "again")) == "You said: again"
