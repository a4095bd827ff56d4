"""Steering a running turn, and the session's queue of turns (WhenBusy), through a real
server: where a steer lands, what comes too late, the queue's order, edits and restarts."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from kodad.config import ServerConfig
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.conftest import restarted
from tests.fakes.llm_server import FakeLLM, Stream, text_chunks
from tests.helpers import (
    Turn,
    create_session,
    decide,
    kind,
    kinds,
    messages,
    scripted,
    stored_events,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub
CONFIRM = spb.APPROVAL_MODE_CONFIRM


def started(session_id: str, text: str, when_busy: int = 0, **fields: int) -> pb.RunTurnRequest:
    return pb.RunTurnRequest(
        command=epb.EngineCommand(
            start_turn=epb.StartTurn(
                session_id=session_id, text=text, when_busy=when_busy, **fields
            )
        )
    )


def steer(text: str, expected_turn_id: str = "") -> epb.EngineCommand:
    return epb.EngineCommand(steer=epb.Steer(text=text, expected_turn_id=expected_turn_id))


async def submit(stub: Stub, session_id: str, command: epb.EngineCommand) -> str:
    request = pb.SubmitCommandRequest(session_id=session_id, command=command)
    return (await stub.SubmitCommand(request)).turn_id


async def test_a_steer_during_a_provider_stream_reaches_the_next_request(
    stub: Stub, workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    first = Stream(text_chunks("Working on ", "it."), pause_after=2)  # after "Working on "
    fake_llm.replies.extend([first, Stream(text_chunks("Tests updated too."))])
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url,
        api_key_env="FAKE_OPENAI_KEY",
    )  # fmt: skip
    session = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(started(session.id, "fix the bug"))
    await turn.until("text_delta")  # the model is mid-answer
    turn_id = await submit(stub, session.id, steer("also update the tests"))
    assert turn_id == turn.events[0].turn_id
    first.resume.set()
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    # The answer in progress finished; then the model was asked again, with the steer last.
    assert len(fake_llm.requests) == 2
    sent = fake_llm.requests[1].body["messages"]
    assert [(m["role"], m.get("content")) for m in sent[-3:]] == [
        ("user", "fix the bug"),
        ("assistant", "Working on it."),
        ("user", "also update the tests"),
    ]
    added = [e for e in events if kind(e) == "user_input_added"]
    assert [a.user_input_added.text for a in added] == ["also update the tests"]
    # Its seq shows where it landed: after the first answer's text, before the second's.
    order = [kind(e) for e in events if kind(e) in ("text_delta", "user_input_added")]
    assert order.index("user_input_added") == len(order) - 2
    history = await messages(stub, session.id)
    assert [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER] == [
        "fix the bug",
        "also update the tests",
    ]


async def test_a_steer_during_a_tool_call_lands_after_its_result(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="a")],
        [{"text": "done"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(started(session.id, "write a"))
    asked = (await turn.until("approval_requested")).approval_requested  # the call waits
    await turn.send(pb.RunTurnRequest(command=steer("and keep it short")))  # on the stream
    await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    history = await messages(stub, session.id)
    roles = [(m.role, m.text) for m in history]
    assert roles == [
        (spb.MESSAGE_ROLE_USER, "write a"),
        (spb.MESSAGE_ROLE_ASSISTANT, ""),
        (spb.MESSAGE_ROLE_TOOL, ""),  # the call's result stays right after the call
        (spb.MESSAGE_ROLE_USER, "and keep it short"),
        (spb.MESSAGE_ROLE_ASSISTANT, "done"),
    ]
    seq = {kind(e): e.seq for e in events}
    assert seq["tool_call_finished"] < seq["user_input_added"] < seq["turn_ended"]


async def test_a_steer_for_another_turn_is_refused(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("write_file", path="a", content="a")], [{"text": "ok"}])
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(started(session.id, "go"))
    asked = (await turn.until("approval_requested")).approval_requested
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await submit(stub, session.id, steer("late", expected_turn_id="t_old"))
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "t_old is not running" in (stale.value.details() or "")
    await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    assert "user_input_added" not in kinds(events)


async def test_a_steer_after_the_turn_ended_is_queued_and_runs(stub: Stub, workspace: Path) -> None:
    provider = scripted([{"text": "first"}], [{"text": "second"}])
    session = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(started(session.id, "one"))
    events = await turn.finish()
    ended_id = events[-1].turn_id
    # Meant for the turn that has just ended: not lost, run as the next turn.
    queued_id = await submit(stub, session.id, steer("and this", expected_turn_id=ended_id))
    assert queued_id != ended_id
    watch = stub.WatchSession(
        pb.WatchSessionRequest(session_id=session.id, after_seq=events[-1].seq)
    )
    seen = []
    async for response in watch:
        seen.append(response.event)
        if kind(response.event) == "turn_ended":
            break
    watch.cancel()
    assert [kind(e) for e in seen if kind(e) != "context_usage"][:3] == [
        "turn_queued", "turn_started", "text_delta",
    ]  # fmt: skip
    assert {e.turn_id for e in seen} == {queued_id}
    assert seen[1].turn_started.text == "and this"
    assert seen[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await submit(stub, session.id, steer("x", expected_turn_id="t_ancient"))
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_enqueue_waits_for_the_running_turn_and_its_stream_follows_it(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", path="a", content="a")], [{"text": "first done"}],
        [{"text": "second done"}],
    )  # fmt: skip
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    running = Turn(stub)
    await running.send(started(session.id, "first"))
    asked = (await running.until("approval_requested")).approval_requested
    rejected = Turn(stub)
    await rejected.send(started(session.id, "default"))
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await rejected.next()
    assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # REJECT, as before
    queued = Turn(stub)
    await queued.send(started(session.id, "second", epb.WHEN_BUSY_ENQUEUE))
    first_event = await queued.next()
    assert kind(first_event) == "turn_queued" and first_event.turn_queued.position == 1
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert [(q.turn_id, q.text) for q in got.queued_turns] == [(first_event.turn_id, "second")]
    await running.send(decide(asked.request_id, epb.DECISION_APPROVE))
    first = await running.finish()
    second = await queued.finish()
    assert first[-1].seq < second[1].seq  # the queued turn started after the first ended
    assert {e.turn_id for e in second} == {first_event.turn_id}
    assert kinds(second)[:2] == ["turn_queued", "turn_started"]
    assert second[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert list(got.queued_turns) == []
    history = await messages(stub, session.id)
    assert [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER] == ["first", "second"]


async def test_interrupt_cancels_the_running_turn_and_goes_first(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", path="a", content="a")], [{"text": "queued ran"}],
        [{"text": "interrupt ran"}],
    )  # fmt: skip
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    running = Turn(stub)
    await running.send(started(session.id, "first"))
    await running.until("approval_requested")
    waiting = Turn(stub)
    await waiting.send(started(session.id, "queued", epb.WHEN_BUSY_ENQUEUE))
    await waiting.until("turn_queued")
    urgent = Turn(stub)
    await urgent.send(started(session.id, "stop, do this", epb.WHEN_BUSY_INTERRUPT))
    assert (await urgent.next()).turn_queued.position == 1  # ahead of the queued one
    first = await running.finish()
    assert first[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    interrupting = await urgent.finish()
    queued = await waiting.finish()
    assert interrupting[-1].seq < queued[1].seq  # the interrupt ran first
    history = await messages(stub, session.id)
    users = [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER]
    assert users == ["first", "stop, do this", "queued"]


async def test_steer_as_when_busy_joins_the_running_turn(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("write_file", path="a", content="a")], [{"text": "ok"}])
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    running = Turn(stub)
    await running.send(started(session.id, "first"))
    asked = (await running.until("approval_requested")).approval_requested
    joined = Turn(stub)
    await joined.send(started(session.id, "also this", epb.WHEN_BUSY_STEER))
    assert kind(await joined.next()) == "turn_started"  # it follows the running turn
    await running.send(decide(asked.request_id, epb.DECISION_APPROVE))
    events = await running.finish()
    also = await joined.finish()
    assert also[-1].turn_id == events[-1].turn_id  # the stream followed the running turn
    assert [e.user_input_added.text for e in events if kind(e) == "user_input_added"] == [
        "also this"
    ]


async def test_removing_and_cancelling_queued_turns(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("write_file", path="a", content="a")], [{"text": "ok"}])
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    running = Turn(stub)
    await running.send(started(session.id, "first"))
    await running.until("approval_requested")
    ids = []
    streams = []
    for text in ("a", "b", "c"):
        queued = Turn(stub)
        await queued.send(started(session.id, text, epb.WHEN_BUSY_ENQUEUE))
        ids.append((await queued.next()).turn_id)
        streams.append(queued)
    remove = pb.RemoveQueuedTurnRequest(session_id=session.id, turn_id=ids[1])
    await stub.RemoveQueuedTurn(remove)
    removed = await streams[1].until("queued_turn_removed")
    assert removed.queued_turn_removed.reason == "removed"
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.RemoveQueuedTurn(remove)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    await streams[2].send(pb.RunTurnRequest(command=epb.EngineCommand(cancel=epb.Cancel())))
    assert (await streams[2].until("queued_turn_removed")).queued_turn_removed.reason == (
        "cancelled"
    )
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert [q.text for q in got.queued_turns] == ["a"]
    # CancelTurn with clear_queue: the running turn stops and nothing queued runs.
    await stub.CancelTurn(pb.CancelTurnRequest(session_id=session.id, clear_queue=True))
    assert (await streams[0].until("queued_turn_removed")).queued_turn_removed.reason == (
        "cancelled"
    )
    ended = await running.finish()
    assert ended[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert list(got.queued_turns) == [] and got.state == spb.SESSION_STATE_IDLE
    log = await stored_events(stub, session.id)
    assert "turn_started" not in [kind(e) for e in log if e.turn_id in ids]


async def test_a_queue_survives_a_restart_and_runs_in_order(
    server_config: ServerConfig, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", path="a", content="a")],
        [{"text": "one"}], [{"text": "two"}], [{"text": "three"}],
    )  # fmt: skip
    async with Server(server_config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = await create_session(stub, workspace, provider, mode=CONFIRM)
        running = Turn(stub)
        await running.send(started(session.id, "first"))
        await running.until("approval_requested")
        for text in ("second", "third"):
            queued = Turn(stub)
            continue_ = epb.DISCONNECT_POLICY_CONTINUE
            await queued.send(
                started(session.id, text, epb.WHEN_BUSY_ENQUEUE, on_disconnect=continue_)
            )
            await queued.until("turn_queued")
    async with (
        Server(restarted(server_config)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
        ended = 0
        async for response in watch:
            if kind(response.event) == "turn_ended":
                ended += 1
                if ended == 3:  # the interrupted one, then both queued
                    break
        watch.cancel()
        history = await messages(stub, session.id)
        users = [m.text for m in history if m.role == spb.MESSAGE_ROLE_USER]
        assert users == ["first", "second", "third"]
        got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
        assert list(got.queued_turns) == []


async def test_a_steer_the_turn_could_not_take_before_it_ended_runs_next(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", path="a", content="a")], [{"text": "the steer ran"}]
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(started(session.id, "first"))
    await turn.until("approval_requested")
    taken_by = await submit(stub, session.id, steer("and then this"))  # waits in the turn
    assert taken_by == turn.events[0].turn_id
    await stub.CancelTurn(pb.CancelTurnRequest(session_id=session.id))  # before it landed
    first = await turn.finish()
    assert first[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert "user_input_added" not in kinds(first)
    watch = stub.WatchSession(
        pb.WatchSessionRequest(session_id=session.id, after_seq=first[-1].seq)
    )
    later = []
    async for response in watch:
        later.append(response.event)
        if kind(response.event) == "turn_ended":
            break
    watch.cancel()
    assert kinds(later)[:2] == ["turn_queued", "turn_started"]
    assert later[1].turn_started.text == "and then this"  # not lost: its own turn
    assert later[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
