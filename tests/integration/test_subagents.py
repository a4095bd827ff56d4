"""invoke_agent through a real server: child sessions, tagged events, approvals answered on
the parent's stream, parallel sub-agents, cancel cascading, the loop budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.helpers import (
    Turn,
    assert_history_valid,
    cancel,
    create_session,
    decide,
    finished_calls,
    kind,
    messages,
    run_turn,
    scripted,
    start,
    stored_events,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub


def agent(workspace: Path, name: str, **fields: Any) -> None:
    directory = workspace / ".kodad" / "agents"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps({"name": name, **fields}))


def relayed(events: list[epb.EngineEvent]) -> list[epb.EngineEvent]:
    return [e for e in events if e.subagent_session_id]


async def test_the_sub_agents_answer_is_the_tool_result_and_its_events_are_tagged(
    stub: Stub, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("hi\n")
    agent(workspace, "reviewer", description="Reviews files.", system_prompt="Be terse.")
    provider = scripted(
        [tool_call("invoke_agent", "a", agent="reviewer", task="What does a.txt say?")],
        [{"text": "The reviewer says hi."}],
        reviewer=[[tool_call("read_file", "r", path="a.txt")], [{"text": "a.txt says hi"}]],
    )
    parent = await create_session(stub, workspace, provider)
    events = await run_turn(stub, parent.id, "ask the reviewer")

    assert finished_calls(events)["a"].output == "a.txt says hi"
    assert not finished_calls(events)["a"].is_error
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # one gap-free log
    tagged = relayed(events)
    child_id = tagged[0].subagent_session_id
    assert {(e.subagent_session_id, e.parent_call_id) for e in tagged} == {(child_id, "a")}
    assert {e.turn_id for e in events} == {events[0].turn_id}  # the parent's turn
    assert [kind(e) for e in tagged if kind(e) not in ("context_usage", "text_delta")] == [
        "tool_call_started",
        "tool_call_finished",
    ]
    # The sub-agent's start and end stay in its own log; the parent's call brackets it.
    started = next(i for i, e in enumerate(events) if kind(e) == "tool_call_started")
    ended = max(i for i, e in enumerate(events) if kind(e) == "tool_call_finished")
    assert all(started < events.index(e) < ended for e in tagged)

    child = (await stub.GetSession(pb.GetSessionRequest(session_id=child_id))).session
    assert child.parent_session_id == parent.id
    assert child.profile == "reviewer"
    assert child.workspace == parent.workspace
    assert child.state == spb.SESSION_STATE_IDLE
    own = await stored_events(stub, child_id)
    assert kind(own[0]) == "turn_started" and own[0].turn_started.text == "What does a.txt say?"
    assert kind(own[-1]) == "turn_ended"
    assert own[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    assert not relayed(own)  # in its own log, events are its own
    history = await messages(stub, child_id)
    assert_history_valid(history)
    assert history[-1].text == "a.txt says hi"
    parent_view = (await stub.GetSession(pb.GetSessionRequest(session_id=parent.id))).session
    assert parent_view.parent_session_id == ""


async def test_a_sub_agents_approval_is_answered_on_the_parents_stream(
    stub: Stub, workspace: Path
) -> None:
    agent(workspace, "writer")
    provider = scripted(
        [tool_call("invoke_agent", "a", agent="writer", task="write notes.txt")],
        [{"text": "written"}],
        writer=[[tool_call("write_file", "w", path="notes.txt", content="n\n")], [{"text": "ok"}]],
    )
    parent = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    turn = Turn(stub)
    await turn.send(start(parent.id, "delegate"))
    asked = await turn.until("approval_requested")
    assert asked.subagent_session_id and asked.parent_call_id == "a"
    assert asked.approval_requested.tool_name == "write_file"
    assert not (workspace / "notes.txt").exists()
    # A client attaching to the parent later is re-sent the open request, tagged.
    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=parent.id, after_seq=asked.seq))
    resent = (await watch.read()).event
    watch.cancel()
    assert resent == asked
    await turn.send(decide(asked.approval_requested.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    assert (workspace / "notes.txt").read_text() == "n\n"
    resolved = next(e for e in events if kind(e) == "approval_resolved")
    assert resolved.subagent_session_id == asked.subagent_session_id
    assert finished_calls(events)["a"].output == "ok"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_two_sub_agents_run_in_parallel(stub: Stub, workspace: Path) -> None:
    agent(workspace, "one")
    agent(workspace, "two")
    provider = scripted(
        [
            tool_call("invoke_agent", "a", agent="one", task="write one.txt"),
            tool_call("invoke_agent", "b", agent="two", task="write two.txt"),
        ],
        [{"text": "both done"}],
        one=[[tool_call("write_file", "w", path="one.txt", content="1")], [{"text": "one"}]],
        two=[[tool_call("write_file", "w", path="two.txt", content="2")], [{"text": "two"}]],
    )
    parent = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    turn = Turn(stub)
    await turn.send(start(parent.id, "delegate twice"))
    # Both ask before either is answered: they run at the same time.
    first = await turn.until("approval_requested")
    second = await turn.until("approval_requested")
    assert {first.parent_call_id, second.parent_call_id} == {"a", "b"}
    assert first.subagent_session_id != second.subagent_session_id
    for asked in (second, first):
        await turn.send(decide(asked.approval_requested.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    results = finished_calls(events)
    assert (results["a"].output, results["b"].output) == ("one", "two")
    assert (workspace / "one.txt").read_text() == "1"
    assert (workspace / "two.txt").read_text() == "2"
    assert_history_valid(await messages(stub, parent.id))


async def test_cancel_cascades_into_a_running_sub_agent(stub: Stub, workspace: Path) -> None:
    agent(workspace, "sleeper")
    provider = scripted(
        [tool_call("invoke_agent", "a", agent="sleeper", task="wait")],
        sleeper=[[tool_call("bash", "s", command="sleep 30")], [{"text": "woke"}]],
    )
    parent = await create_session(stub, workspace, provider)
    turn = Turn(stub)
    await turn.send(start(parent.id, "delegate"))
    while True:
        event = await turn.until("tool_call_started")
        if event.subagent_session_id:
            break
    await turn.send(cancel())
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert finished_calls(events)["a"].is_error

    child_id = event.subagent_session_id
    child = (await stub.GetSession(pb.GetSessionRequest(session_id=child_id))).session
    assert child.state == spb.SESSION_STATE_IDLE
    own = await stored_events(stub, child_id)
    assert own[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert finished_calls(own)["s"].is_error
    for session_id in (parent.id, child_id):
        assert_history_valid(await messages(stub, session_id))


async def test_a_sub_agent_at_its_loop_budget_gets_one_round_without_tools(
    stub: Stub, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("x")
    agent(workspace, "busy", loop_cap=2)
    read = [tool_call("read_file", path="a.txt")]
    provider = scripted(
        [
            tool_call("invoke_agent", "a", agent="busy", task="answer at the cap"),
            tool_call("invoke_agent", "b", agent="stubborn", task="keep calling tools"),
        ],
        [{"text": "done"}],
        busy=[read, read, [{"text": "final answer"}]],
        stubborn=[read, read, read],
    )
    agent(workspace, "stubborn", loop_cap=2)
    parent = await create_session(stub, workspace, provider)
    results = finished_calls(await run_turn(stub, parent.id, "go"))
    assert not results["a"].is_error and results["a"].output == "final answer"
    assert results["b"].is_error and "used up its tool budget" in results["b"].output

    children = (await stub.ListSessions(pb.ListSessionsRequest())).sessions
    busy = next(s for s in children if s.profile == "busy")
    history = await messages(stub, busy.id)
    assert_history_valid(history)
    assert "Do not call tools any more" in history[-2].text  # the grace round's request
    assert history[-1].text == "final answer"


async def test_unknown_agents_and_nested_sub_agents_are_tool_errors(
    stub: Stub, workspace: Path
) -> None:
    agent(workspace, "nester")
    provider = scripted(
        [
            tool_call("invoke_agent", "a", agent="nobody", task="x"),
            tool_call("invoke_agent", "b", agent="nester", task="nest"),
        ],
        [{"text": "done"}],
        nester=[[tool_call("invoke_agent", "n", agent="nester", task="deeper")], [{"text": "no"}]],
    )
    parent = await create_session(stub, workspace, provider)
    events = await run_turn(stub, parent.id, "go")
    results = finished_calls(events)
    assert results["a"].is_error
    assert "agent profile 'nobody' not found; agents: default, nester" in results["a"].output
    assert results["b"].output == "no"
    nested = next(e.tool_call_finished for e in relayed(events) if kind(e) == "tool_call_finished")
    assert nested.is_error
    assert "a sub-agent does not allow the tool 'invoke_agent'" in nested.output
