"""RunTurn through a real server: events, tools, modes, errors, cancellation, loop cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.tools.shell import processes_of
from tests.helpers import (
    Turn,
    assert_history_valid,
    cancel,
    create_session,
    exits,
    finished_calls,
    kind,
    kinds,
    messages,
    run_turn,
    scripted,
    start,
    text_of,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub
BLOCK = {"delay_ms": 600_000}  # a provider that stalls until the turn is cancelled


async def test_plain_answer_streams_deltas_and_is_stored(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [{"text": "Hello"}, {"text": ", world"}, {"usage": {"input_tokens": 7, "output_tokens": 2}}]
    )
    session = await create_session(stub, workspace, provider)

    events = await run_turn(stub, session.id, "hi")

    assert kinds(events) == ["turn_started", "text_delta", "text_delta", "usage", "turn_ended"]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]  # with context_usage
    usage = events[1].context_usage
    assert 0 < usage.used_tokens < usage.max_tokens == 128_000
    assert {e.session_id for e in events} == {session.id}
    assert len({e.turn_id for e in events}) == 1
    assert events[0].turn_started.text == "hi"
    assert text_of(events) == "Hello, world"
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_COMPLETED
    assert (ended.usage.input_tokens, ended.usage.output_tokens) == (7, 2)
    history = await messages(stub, session.id)
    assert [m.role for m in history] == [spb.MESSAGE_ROLE_USER, spb.MESSAGE_ROLE_ASSISTANT]
    assert history[1].text == "Hello, world"
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert got.state == spb.SESSION_STATE_IDLE
    assert got.last_seq == 6
    assert got.message_count == 2
    assert got.usage.input_tokens == 7


async def test_echo_without_script(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    events = await run_turn(stub, session.id, "ping pong")
    assert text_of(events) == "You said: ping pong"


async def test_auto_mode_runs_tools_and_reports_file_changes(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [
            {"text": "Writing."},
            tool_call("write_file", "c1", path="src/app.py", content="print(1)\n"),
        ],
        [tool_call("edit_file", "c2", path="src/app.py", old_string="1", new_string="2")],
        [tool_call("bash", "c3", command="cat src/app.py; echo done")],
        [{"text": "All set."}],
    )
    session = await create_session(stub, workspace, provider)

    events = await run_turn(stub, session.id, "make an app")

    assert (workspace / "src" / "app.py").read_text() == "print(2)\n"
    changes = [
        (e.file_changed.path, e.file_changed.change) for e in events if kind(e) == "file_changed"
    ]
    assert changes == [
        ("src/app.py", epb.FILE_CHANGE_KIND_CREATED),
        ("src/app.py", epb.FILE_CHANGE_KIND_MODIFIED),
    ]
    finished = {
        e.tool_call_finished.call_id: e.tool_call_finished
        for e in events
        if kind(e) == "tool_call_finished"
    }
    assert set(finished) == {"c1", "c2", "c3"}
    assert not any(f.is_error for f in finished.values())
    assert finished["c3"].output == "print(2)\ndone\n"
    streamed = "".join(e.tool_call_output.chunk for e in events if kind(e) == "tool_call_output")
    assert streamed == "print(2)\ndone\n"
    started = [e for e in events if kind(e) == "tool_call_started"]
    assert started[0].tool_call_started.tool_name == "write_file"
    assert '"src/app.py"' in started[0].tool_call_started.arguments_json
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    history = await messages(stub, session.id)
    assert_history_valid(history)
    assert len(history) == 8  # user, (assistant, tool) x 3, assistant
    assert history[-1].text == "All set."


@pytest.mark.parametrize("mode", [spb.APPROVAL_MODE_READ_ONLY, spb.APPROVAL_MODE_CONFIRM])
async def test_read_only_and_confirm_refuse_mutations(
    stub: Stub, workspace: Path, mode: int
) -> None:
    (workspace / "notes.txt").write_text("keep me\n")
    provider = scripted(
        [
            tool_call("read_file", "r", path="notes.txt"),
            tool_call("delete_file", "d", path="notes.txt"),
            tool_call("bash", "b", command="touch made-by-bash"),
        ],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_READ_ONLY)

    events = await run_turn(stub, session.id, "tidy up")

    finished = {
        e.tool_call_finished.call_id: e.tool_call_finished
        for e in events
        if kind(e) == "tool_call_finished"
    }
    assert finished["r"].output == "keep me\n" and not finished["r"].is_error
    for call_id in ("d", "b"):
        assert finished[call_id].is_error
        assert finished[call_id].output.startswith("refused:")
    assert (workspace / "notes.txt").exists()
    assert not (workspace / "made-by-bash").exists()


async def test_tool_errors_reach_the_model(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [
            tool_call("read_file", "a", path="../outside.txt"),
            tool_call("no_such_tool", "b"),
            {"tool_call": {"name": "read_file", "id": "c", "arguments": "{not json"}},
        ],
        [{"text": "sorry"}],
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "go")
    finished = {
        e.tool_call_finished.call_id: e.tool_call_finished
        for e in events
        if kind(e) == "tool_call_finished"
    }
    assert all(f.is_error for f in finished.values())
    assert "outside the workspace" in finished["a"].output
    assert "unknown tool 'no_such_tool'" in finished["b"].output
    assert "not valid JSON" in finished["c"].output
    assert_history_valid(await messages(stub, session.id))


async def test_provider_error_fails_the_turn_not_the_rpc(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [{"text": "par"}, {"error": {"code": "overloaded", "message": "try later"}}]
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "x")
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_FAILED
    assert (ended.error_code, ended.error_message) == ("overloaded", "try later")
    history = await messages(stub, session.id)
    assert history[-1].text == "par"  # the partial answer is kept


async def test_script_exhausted_fails_with_clear_code(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "one"}]))
    await run_turn(stub, session.id, "1")
    events = await run_turn(stub, session.id, "2")
    assert events[-1].turn_ended.error_code == "script_exhausted"


async def test_first_command_must_be_start_turn(stub: Stub) -> None:
    call = stub.RunTurn()
    await call.write(cancel())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first command of RunTurn must be start_turn" in (err.value.details() or "")


async def test_empty_stream_is_invalid(stub: Stub) -> None:
    call = stub.RunTurn()
    await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_session_is_not_found(stub: Stub) -> None:
    call = stub.RunTurn()
    await call.write(start("s_nope", "hi"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "s_nope" in (err.value.details() or "")


async def test_empty_input_is_invalid(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    call = stub.RunTurn()
    await call.write(start(session.id, ""))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_second_turn_while_running_names_the_running_turn(
    stub: Stub, workspace: Path
) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "thinking"}, BLOCK]))
    first = Turn(stub)
    await first.send(start(session.id, "one"))
    started = await first.until("text_delta")

    second = stub.RunTurn()
    await second.write(start(session.id, "two"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await second.read()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert started.turn_id in (err.value.details() or "")

    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert got.state == spb.SESSION_STATE_RUNNING
    assert got.active_turn_id == started.turn_id
    await first.send(cancel())
    await first.finish()


async def test_cancel_command_keeps_partial_text_and_next_turn_works(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted([{"text": "partial "}, {"text": "answer"}, BLOCK], [{"text": "fresh"}])
    session = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    await turn.until("text_delta")
    await turn.until("text_delta")
    await turn.send(cancel())
    events = await turn.finish()

    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    history = await messages(stub, session.id)
    assert history[-1].role == spb.MESSAGE_ROLE_ASSISTANT
    assert history[-1].text == "partial answer"
    assert text_of(await run_turn(stub, session.id, "again")) == "fresh"


async def test_cancel_turn_from_another_client_stops_a_running_tool(
    stub: Stub, channel: grpc.aio.Channel, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("bash", "long", command="sleep 600 & echo started; wait")],
        [{"text": "after"}],
    )
    session = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(start(session.id, "run it"))
    output = await turn.until("tool_call_output")  # the command is running
    running = processes_of({output.turn_id})
    assert running

    other = pb_grpc.SessionServiceStub(channel)
    response = await other.CancelTurn(pb.CancelTurnRequest(session_id=session.id))
    events = await turn.finish()

    assert response.turn_id == events[0].turn_id
    finished = [e.tool_call_finished for e in events if kind(e) == "tool_call_finished"]
    assert len(finished) == 1 and finished[0].is_error and finished[0].output == "cancelled"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert all(exits(pid) for pid in running)  # killed, with everything it started
    assert_history_valid(await messages(stub, session.id))


async def test_cancel_turn_when_idle_is_failed_precondition(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CancelTurn(pb.CancelTurnRequest(session_id=session.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_client_drop_cancels_with_cancel_policy(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "x"}, BLOCK]))
    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    await turn.until("text_delta")
    turn.call.cancel()  # the client goes away

    async for response in watch:
        if kind(response.event) == "turn_ended":
            assert response.event.turn_ended.reason == epb.TURN_END_REASON_CANCELLED
            break
    watch.cancel()


async def test_client_drop_with_continue_policy_finishes_the_turn(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [{"text": "working"}, tool_call("bash", "w", command="read line < /dev/null; echo ok")],
        [{"text": "finished"}],
    )
    session = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(start(session.id, "go", on_disconnect=epb.DISCONNECT_POLICY_CONTINUE))
    first = await turn.until("text_delta")
    turn.call.cancel()

    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id, after_seq=first.seq))
    seen = []
    async for response in watch:
        seen.append(response.event)
        if kind(response.event) == "turn_ended":
            break
    watch.cancel()
    assert seen[0].seq == first.seq + 1
    assert [e.seq for e in seen] == list(range(first.seq + 1, first.seq + 1 + len(seen)))
    assert seen[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    assert text_of(seen) == "finished"


async def test_loop_cap_stop_and_continue(stub: Stub, workspace: Path) -> None:
    step = [tool_call("list_dir", path=".")]
    provider = scripted(step, step, step, [{"text": "done"}])
    session = await create_session(stub, workspace, provider, loop_cap=1)

    turn = Turn(stub)
    await turn.send(start(session.id, "loop"))
    reached = await turn.until("loop_cap_reached")
    assert (reached.loop_cap_reached.iterations, reached.loop_cap_reached.cap) == (1, 1)
    await turn.send(
        pb.RunTurnRequest(
            command=epb.EngineCommand(
                loop_decision=epb.LoopDecision(action=epb.LOOP_ACTION_CONTINUE, extra_iterations=1)
            )
        )
    )
    reached = await turn.until("loop_cap_reached")
    assert (reached.loop_cap_reached.iterations, reached.loop_cap_reached.cap) == (2, 2)
    # Answered from another client this time.
    await stub.SubmitCommand(
        pb.SubmitCommandRequest(
            session_id=session.id,
            command=epb.EngineCommand(loop_decision=epb.LoopDecision(action=epb.LOOP_ACTION_STOP)),
        )
    )
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_STOPPED_AT_LOOP_CAP
    assert_history_valid(await messages(stub, session.id))


async def test_submit_command_errors(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "x"}, BLOCK]))
    loop_stop = epb.EngineCommand(loop_decision=epb.LoopDecision(action=epb.LOOP_ACTION_STOP))

    async def code_of(request: pb.SubmitCommandRequest) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitCommand(request)
        return err.value.code()

    assert (
        await code_of(pb.SubmitCommandRequest(session_id=session.id, command=loop_stop))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await code_of(pb.SubmitCommandRequest(session_id="s_missing", command=loop_stop))
        == grpc.StatusCode.NOT_FOUND
    )
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    await turn.until("text_delta")
    assert (
        await code_of(pb.SubmitCommandRequest(session_id=session.id, command=loop_stop))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await code_of(pb.SubmitCommandRequest(session_id=session.id, command=epb.EngineCommand()))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    approval = epb.EngineCommand(
        approval_decision=epb.ApprovalDecision(request_id="r1", decision=epb.DECISION_APPROVE)
    )
    assert (
        await code_of(pb.SubmitCommandRequest(session_id=session.id, command=approval))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code_of(
            pb.SubmitCommandRequest(session_id=session.id, command=loop_stop, turn_id="t_other")
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    response = await stub.SubmitCommand(
        pb.SubmitCommandRequest(
            session_id=session.id, command=epb.EngineCommand(cancel=epb.Cancel())
        )
    )
    events = await turn.finish()
    assert response.turn_id == events[0].turn_id
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED


async def test_watch_replays_then_follows_without_gaps(stub: Stub, workspace: Path) -> None:
    session = await create_session(
        stub, workspace, scripted([{"text": "a"}], [{"text": "b"}, {"text": "c"}])
    )
    first = await run_turn(stub, session.id, "1")

    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id, after_seq=2))
    replayed = [await watch.read() for _ in range(len(first) - 2)]
    assert [r.event.seq for r in replayed] == [e.seq for e in first[2:]]
    assert [r.event for r in replayed] == first[2:]

    second = await run_turn(stub, session.id, "2")
    live = [(await watch.read()).event for _ in second]
    assert live == second
    watch.cancel()


async def test_watch_errors(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    for request, code in [
        (pb.WatchSessionRequest(session_id="s_missing"), grpc.StatusCode.NOT_FOUND),
        (pb.WatchSessionRequest(session_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.WatchSessionRequest(session_id=session.id, after_seq=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.WatchSessionRequest(session_id=session.id, after_seq=1), grpc.StatusCode.OUT_OF_RANGE),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.WatchSession(request):
                pass
        assert err.value.code() == code


async def test_many_sessions_run_turns_concurrently(stub: Stub, workspace: Path) -> None:
    sessions = [
        await create_session(stub, workspace, scripted([{"repeat": 200, "text": "x"}]))
        for _ in range(20)
    ]
    results = await asyncio.gather(*(run_turn(stub, s.id, "go") for s in sessions))
    for events in results:
        assert text_of(events) == "x" * 200
        # Gap-free from 1; deltas queued behind a commit may be merged into fewer events.
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert kind(events[-1]) == "turn_ended"


async def test_a_watcher_that_does_not_read_never_stalls_the_turn(
    stub: Stub, workspace: Path
) -> None:
    session = await create_session(stub, workspace, scripted([{"repeat": 20_000, "text": "tok "}]))
    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
    await run_turn(stub, session.id, "go")  # completes while the watcher reads nothing

    seen, text = [], []
    while True:
        event = (await watch.read()).event
        seen.append(event.seq)
        text.append(event.text_delta.text)
        if kind(event) == "turn_ended":
            break
    watch.cancel()
    # Every event, gap-free (deltas queued behind a commit may have been merged).
    assert seen == list(range(1, len(seen) + 1))
    assert "".join(text) == "tok " * 20_000


async def test_todos_are_kept_emitted_and_readable(stub: Stub, workspace: Path) -> None:
    plan = [
        {"content": "read the code", "status": "completed"},
        {"content": "write the fix ✓", "status": "in_progress"},
    ]
    provider = scripted(
        [tool_call("todo_write", "w", todos=plan)],
        [tool_call("todo_read", "r")],
        [tool_call("todo_write", "bad", todos=[{"content": "x", "status": "someday"}])],
        [{"text": "planned"}],
    )
    # Read-only mode: planning is not a change to the workspace, so it is allowed.
    session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_READ_ONLY)
    events = await run_turn(stub, session.id, "plan")
    updates = [e.todos_updated for e in events if e.HasField("todos_updated")]
    assert len(updates) == 1
    assert [(t.content, t.status) for t in updates[0].todos] == [
        ("read the code", spb.TODO_STATUS_COMPLETED),
        ("write the fix ✓", spb.TODO_STATUS_IN_PROGRESS),
    ]
    results = finished_calls(events)
    assert results["r"].output == "[x] read the code\n[>] write the fix ✓"
    assert results["bad"].is_error and "status must be one of" in results["bad"].output
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert [t.content for t in got.todos] == ["read the code", "write the fix ✓"]
