"""kodad.client against a real server: turns with callbacks, defaults, watch, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kodad.client import NO_ANSWER, Answer, Client, KodadError, LoopAnswer
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.server import Server
from tests.helpers import scripted, tool_call


async def test_turn_with_callbacks_and_watch(server: Server, workspace: Path) -> None:
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="A")],
        [tool_call("list_dir", "l")],
        [{"text": "done"}],
    )
    asked: list[str] = []

    async def approve(request: epb.ApprovalRequested) -> Answer:
        asked.append(request.summary)
        return Answer(epb.DECISION_APPROVE)

    async with Client(server.address) as kodad:
        session = await kodad.create_session(str(workspace), provider=provider, loop_cap=1)
        turn = kodad.run_turn(
            session.id, "go", on_approval=approve,
            on_loop_cap=lambda q: LoopAnswer(epb.LOOP_ACTION_CONTINUE, 5),
        )  # fmt: skip
        events = [e async for e in turn]
        assert asked == ["Create a.txt (1 line)"]
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
        assert turn.turn_id == events[0].turn_id
        assert (workspace / "a.txt").read_text() == "A"

        watched = []
        async for event in kodad.watch(session.id, after_seq=0):
            watched.append(event)
            if len(watched) == len(events):
                break
        assert watched == events
        assert [c.path for c in await kodad.file_changes(session.id)] == ["a.txt"]
        assert [s.id async for s in kodad.list_sessions()] == [session.id]


async def test_unanswered_questions_default_to_reject_and_stop(
    server: Server, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("bash", "b", command="touch x")], [tool_call("list_dir")], [{"text": "x"}]
    )
    async with Client(server.address) as kodad:
        session = await kodad.create_session(str(workspace), provider=provider, loop_cap=1)
        events = [e async for e in kodad.run_turn(session.id, "go")]
    rejected = next(e.tool_call_finished for e in events if e.HasField("tool_call_finished"))
    assert rejected.output == "rejected by the user"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_STOPPED_AT_LOOP_CAP
    assert not (workspace / "x").exists()


async def test_errors_carry_the_grpc_code(server: Server, workspace: Path) -> None:
    async with Client(server.address) as kodad:
        with pytest.raises(KodadError) as err:
            await kodad.get_session("s_nope")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(KodadError) as err:
            [e async for e in kodad.run_turn("s_nope", "hi")]
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        session = await kodad.create_session(str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
        with pytest.raises(KodadError) as err:
            await kodad.cancel_turn(session.id)
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_errors_carry_their_reason_and_metadata(server: Server, workspace: Path) -> None:
    provider = scripted(
        [tool_call("write_file", "w", path="a.txt", content="A")], [{"text": "done"}]
    )
    async with Client(server.address) as kodad:
        with pytest.raises(KodadError) as err:
            await kodad.get_session("s_nope")
        assert (err.value.reason, err.value.metadata) == (
            "SESSION_NOT_FOUND",
            {"session_id": "s_nope"},
        )
        session = await kodad.create_session(str(workspace), provider=provider)
        with pytest.raises(KodadError) as err:
            await kodad.cancel_turn(session.id)
        assert err.value.reason == "NO_RUNNING_TURN"
        with pytest.raises(KodadError) as err:
            [s async for s in kodad.list_sessions(page_size=-1)]
        assert (err.value.reason, err.value.metadata) == ("INVALID_ARGUMENT", {})

        turn = kodad.run_turn(session.id, "go", on_approval=lambda request: None)
        events = turn.__aiter__()
        while not (await anext(events)).HasField("approval_requested"):
            pass
        with pytest.raises(KodadError) as err:
            [e async for e in kodad.run_turn(session.id, "again")]
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.reason == "TURN_ALREADY_RUNNING"
        assert err.value.metadata == {"session_id": session.id, "turn_id": turn.turn_id}
        await turn.cancel()
        assert [e async for e in events][-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED


async def test_ask_user_is_answered_by_the_handler_or_the_documented_default(
    server: Server, workspace: Path
) -> None:
    ask = tool_call("ask_user", "q", question="Which colour?", choices=["red", "blue"])
    provider = scripted([ask], [{"text": "ok"}], [ask], [{"text": "ok"}])
    async with Client(server.address) as kodad:
        session = await kodad.create_session(str(workspace), provider=provider)
        asked: list[str] = []

        async def choose(question: epb.UserQuestion) -> str:
            asked.append(question.question)
            return question.choices[1]

        events = [e async for e in kodad.run_turn(session.id, "pick", on_question=choose)]
        answered = next(e.tool_call_finished for e in events if e.HasField("tool_call_finished"))
        assert asked == ["Which colour?"] and answered.output == "blue"
        # Without a handler the turn does not hang: the model is told to decide itself.
        events = [e async for e in kodad.run_turn(session.id, "pick again")]
        answered = next(e.tool_call_finished for e in events if e.HasField("tool_call_finished"))
        assert answered.output == NO_ANSWER
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_create_session_sets_the_sandbox_and_get_session_shows_it(
    server: Server, workspace: Path
) -> None:
    async with Client(server.address) as kodad:
        read_only = spb.Sandbox(policy=spb.SANDBOX_POLICY_READ_ONLY, network=True)
        created = await kodad.create_session(str(workspace), sandbox=read_only)
        assert created.sandbox == read_only
        default = await kodad.create_session(str(workspace))
        assert default.sandbox.policy == spb.SANDBOX_POLICY_WORKSPACE_WRITE
        assert not default.sandbox.network


async def test_leaving_a_turn_early_cancels_it_so_the_next_one_starts(
    server: Server, workspace: Path
) -> None:
    provider = scripted(
        [{"text": "long"}, {"delay_ms": 600000}],
        [{"text": "second"}],
        [{"text": "long again"}, {"delay_ms": 600000}],
        [{"text": "fourth"}],
    )
    async with Client(server.address) as kodad:
        session = await kodad.create_session(str(workspace), provider=provider)
        async for event in kodad.run_turn(session.id, "first"):
            if event.HasField("text_delta"):
                break  # the turn still runs on the server: it is cancelled, not left behind
        events = [e async for e in kodad.run_turn(session.id, "next")]
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
        ended = [
            e.turn_ended.reason async for e in _log(kodad, session.id) if e.HasField("turn_ended")
        ]
        assert ended == [epb.TURN_END_REASON_CANCELLED, epb.TURN_END_REASON_COMPLETED]

        turn = kodad.run_turn(session.id, "third")  # an exception out of the loop: the same
        with pytest.raises(RuntimeError):
            async for _event in turn:
                raise RuntimeError("the caller's own failure")
        events = [e async for e in kodad.run_turn(session.id, "fourth")]
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
        assert turn.done
        ended = [
            e.turn_ended.reason async for e in _log(kodad, session.id) if e.HasField("turn_ended")
        ]
        assert ended[2:] == [epb.TURN_END_REASON_CANCELLED, epb.TURN_END_REASON_COMPLETED]


async def _log(kodad: Client, session_id: str) -> AsyncIterator[epb.EngineEvent]:
    last = (await kodad.get_session(session_id)).last_seq
    async for event in kodad.watch(session_id):
        yield event
        if event.seq >= last:
            return


async def test_server_streams_send_their_headers_before_any_event(
    server: Server, workspace: Path
) -> None:
    async with Client(server.address) as kodad:
        session = await kodad.create_session(str(workspace))
        call = kodad.stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
        async with asyncio.timeout(10):  # no event is coming: only the headers can end this
            await call.initial_metadata()
        call.cancel()
