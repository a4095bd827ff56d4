"""Human in the loop: CONFIRM mode, decisions from any client, rules, timeouts, re-sending."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.config import ServerConfig
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.conftest import restarted
from tests.fakes.llm_server import FakeLLM, Stream, text_chunks, tool_call_chunks
from tests.helpers import (
    Turn,
    assert_history_valid,
    cancel,
    create_session,
    decide,
    finished_calls,
    kind,
    kinds,
    messages,
    run_turn,
    scripted,
    start,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub
CONFIRM = spb.APPROVAL_MODE_CONFIRM


async def test_read_only_tools_run_at_once_mutations_wait_for_approval(
    stub: Stub, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("old\n")
    provider = scripted(
        [
            tool_call("read_file", "r", path="a.txt"),
            tool_call("write_file", "w", path="a.txt", content="new\n"),
        ],
        [{"text": "done"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "update a.txt"))

    asked = await turn.until("approval_requested")
    assert kinds(turn.events) == [
        "turn_started",
        "tool_call_started",
        "tool_call_finished",
        "tool_call_started",
        "approval_requested",
    ]
    request = asked.approval_requested
    assert (request.call_id, request.tool_name) == ("w", "write_file")
    assert json.loads(request.arguments_json) == {"path": "a.txt", "content": "new\n"}
    assert request.summary == "Overwrite a.txt (1 line)"
    assert request.preview == "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n"
    assert (workspace / "a.txt").read_text() == "old\n"  # nothing ran yet

    await turn.send(decide(request.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    resolved = next(e.approval_resolved for e in events if kind(e) == "approval_resolved")
    assert (resolved.request_id, resolved.decision) == (request.request_id, epb.DECISION_APPROVE)
    assert kinds(events)[5:10] == [
        "approval_resolved",
        "checkpoint_taken",  # the workspace before the turn's first change
        "file_changed",
        "checkpoint_taken",  # and after it
        "tool_call_finished",
    ]
    assert (workspace / "a.txt").read_text() == "new\n"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_previews_for_edit_delete_and_bash(stub: Stub, workspace: Path) -> None:
    (workspace / "f.py").write_text("x = 1\ny = 2\n")
    provider = scripted(
        [
            tool_call("edit_file", "e", path="f.py", old_string="y = 2", new_string="y = 3"),
            tool_call("delete_file", "d", path="f.py"),
            tool_call("bash", "b", command="make build", timeout_s=30),
        ],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    seen = []
    for _ in range(3):
        asked = (await turn.until("approval_requested")).approval_requested
        seen.append((asked.summary, asked.preview))
        await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
    await turn.finish()
    assert seen[0] == (
        "Edit f.py (1 replacement)",
        "--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n",
    )
    assert seen[1] == (
        "Delete f.py",
        "--- a/f.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n",
    )
    assert seen[2] == (
        "Run make build",
        f"$ make build\n(cwd: {workspace.resolve()}, timeout 30 s)",
    )


async def test_invalid_calls_fail_without_asking(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [tool_call("edit_file", "e", path="missing.py", old_string="a", new_string="b")],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    events = await run_turn(stub, session.id, "go")
    assert "approval_requested" not in kinds(events)
    assert finished_calls(events)["e"].is_error


async def test_reject_sends_feedback_to_model(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    arguments = json.dumps({"path": "a.txt", "content": "A"})
    fake_llm.replies.extend(
        [
            Stream(tool_call_chunks([("call_1", "write_file", arguments)])),
            Stream(text_chunks("Understood, writing b.txt next time.")),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "write a.txt"))
    asked = (await turn.until("approval_requested")).approval_requested
    feedback = "No — call it b.txt, and «keep» this text verbatim."
    await turn.send(decide(asked.request_id, epb.DECISION_REJECT, feedback))
    events = await turn.finish()

    assert not (workspace / "a.txt").exists()
    result = finished_calls(events)["call_1"]
    assert result.is_error and result.output == f"rejected by the user: {feedback}"
    sent_back = fake_llm.requests[1].body["messages"][-1]
    assert sent_back == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": f"rejected by the user: {feedback}",
    }
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_approve_always_adds_a_rule_that_survives_restart(
    server_config: ServerConfig, workspace: Path
) -> None:
    status = tool_call("bash", command="git add a.txt")
    provider = scripted(
        [status],
        [tool_call("bash", command="git add b.txt")],
        [{"text": "checked"}],
        [status],
        [tool_call("bash", command="git commit -m wip")],
        [tool_call("bash", command="git add a.txt; touch pwned")],
        [{"text": "end"}],
    )
    async with Server(server_config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = await create_session(stub, workspace, provider, mode=CONFIRM)
        turn = Turn(stub)
        await turn.send(start(session.id, "status please"))
        asked = (await turn.until("approval_requested")).approval_requested
        await turn.send(decide(asked.request_id, epb.DECISION_APPROVE_ALWAYS))
        events = await turn.finish()
        assert kinds(events).count("approval_requested") == 1  # "git add b.txt" matched the rule
        by_rule = [e.approval_resolved for e in events if kind(e) == "approval_resolved"][1]
        assert (by_rule.request_id, by_rule.decision) == ("", epb.DECISION_APPROVE)
        assert (by_rule.rule.tool_name, by_rule.rule.command_prefix) == ("bash", "git add")
        assert by_rule.call_id == list(finished_calls(events))[1]
        assert len(finished_calls(events)) == 2
        got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
        assert [(r.tool_name, r.command_prefix) for r in got.approval_rules] == [
            ("bash", "git add")
        ]

    async with (
        Server(restarted(server_config)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        turn = Turn(stub)
        await turn.send(start(session.id, "again"))
        asked = (await turn.until("approval_requested")).approval_requested
        assert asked.summary == "Run git commit -m wip"  # git add ran without asking
        await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
        asked = (await turn.until("approval_requested")).approval_requested
        assert asked.summary == "Run git add a.txt; touch pwned"  # a compound one always asks
        await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
        events = await turn.finish()
        assert not (workspace / "pwned").exists()
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_approve_always_for_file_tools_covers_the_tool(stub: Stub, workspace: Path) -> None:
    (workspace / "old").write_text("0")  # not the session's: deleting it asks
    provider = scripted(
        [tool_call("write_file", path="a", content="1")],
        [tool_call("write_file", path="b", content="2")],
        [tool_call("delete_file", path="old")],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    first = (await turn.until("approval_requested")).approval_requested
    await turn.send(decide(first.request_id, epb.DECISION_APPROVE_ALWAYS))
    second = (await turn.until("approval_requested")).approval_requested
    assert second.tool_name == "delete_file"  # write_file "b" ran by the rule
    await turn.send(decide(second.request_id, epb.DECISION_APPROVE))
    await turn.finish()
    assert (workspace / "b").read_text() == "2"
    assert not (workspace / "old").exists()


async def test_decision_from_a_second_client_first_answer_wins(
    stub: Stub, channel: grpc.aio.Channel, workspace: Path
) -> None:
    provider = scripted(
        [tool_call("write_file", "w", path="x", content="x")],
        [tool_call("write_file", "w2", path="y", content="y")],  # holds the turn open
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    asked = (await turn.until("approval_requested")).approval_requested

    ide = pb_grpc.SessionServiceStub(channel)
    approve = epb.EngineCommand(
        approval_decision=epb.ApprovalDecision(
            request_id=asked.request_id, decision=epb.DECISION_APPROVE
        )
    )
    response = await ide.SubmitCommand(
        pb.SubmitCommandRequest(session_id=session.id, command=approve)
    )
    assert response.turn_id == turn.events[0].turn_id

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ide.SubmitCommand(pb.SubmitCommandRequest(session_id=session.id, command=approve))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already answered" in (err.value.details() or "")

    unknown = epb.EngineCommand(
        approval_decision=epb.ApprovalDecision(
            request_id="r_unknown", decision=epb.DECISION_APPROVE
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ide.SubmitCommand(pb.SubmitCommandRequest(session_id=session.id, command=unknown))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ide.SubmitCommand(
            pb.SubmitCommandRequest(
                session_id=session.id,
                command=epb.EngineCommand(
                    approval_decision=epb.ApprovalDecision(request_id=asked.request_id)
                ),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The orchestrator's late answer on its own stream is a notice, not a broken stream.
    second = (await turn.until("approval_requested")).approval_requested
    await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
    notice = (await turn.until("notice")).notice
    assert "already answered" in notice.text and notice.level == epb.NOTICE_LEVEL_WARNING
    await turn.send(decide(second.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()
    assert (workspace / "x").read_text() == "x"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_pending_approval_is_resent_to_a_client_that_attaches_later(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [{"text": "about to write"}, tool_call("write_file", "w", path="late.txt", content="ok")],
        [{"text": "written"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "go", on_disconnect=epb.DISCONNECT_POLICY_CONTINUE))
    asked = await turn.until("approval_requested")
    turn.call.cancel()  # the orchestrator goes away; the turn waits on

    last_seq = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session.last_seq
    assert last_seq == asked.seq
    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id, after_seq=last_seq))
    first = (await watch.read()).event
    assert first == asked
    await stub.SubmitCommand(
        pb.SubmitCommandRequest(
            session_id=session.id,
            command=epb.EngineCommand(
                approval_decision=epb.ApprovalDecision(
                    request_id=first.approval_requested.request_id, decision=epb.DECISION_APPROVE
                )
            ),
        )
    )
    rest = []
    while True:
        event = (await watch.read()).event
        rest.append(event)
        if kind(event) == "turn_ended":
            break
    watch.cancel()
    assert [e.seq for e in rest] == list(range(asked.seq + 1, asked.seq + 1 + len(rest)))
    assert rest[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    assert (workspace / "late.txt").read_text() == "ok"


async def test_unanswered_approval_times_out_as_a_rejection(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("bash", "b", command="touch t")], [{"text": "ok"}])
    session = await create_session(
        stub, workspace, provider, mode=CONFIRM, approval_timeout=Duration(nanos=200_000_000)
    )
    assert session.approval_timeout.ToMilliseconds() == 200
    events = await run_turn(stub, session.id, "go")
    assert kinds(events)[:6] == [
        "turn_started",
        "tool_call_started",
        "approval_requested",
        "notice",
        "approval_resolved",
        "tool_call_finished",
    ]
    notice = next(e.notice for e in events if e.HasField("notice"))
    resolved = next(e.approval_resolved for e in events if e.HasField("approval_resolved"))
    assert "was not answered within 0.2 s" in notice.text
    assert resolved.decision == epb.DECISION_REJECT
    assert finished_calls(events)["b"].output == "rejected by the user: no answer within 0.2 s"
    assert not (workspace / "t").exists()


async def test_cancel_while_waiting_for_approval_answers_every_call(
    stub: Stub, workspace: Path
) -> None:
    provider = scripted(
        [
            tool_call("write_file", "w1", path="a", content="1"),
            tool_call("write_file", "w2", path="b", content="2"),
        ]
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    await turn.until("approval_requested")
    await turn.send(cancel())
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert {c: f.output for c, f in finished_calls(events).items()} == {
        "w1": "cancelled",
        "w2": "cancelled",
    }
    assert_history_valid(await messages(stub, session.id))


async def test_cancel_while_waiting_for_a_loop_decision(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("list_dir")], [{"text": "never"}])
    session = await create_session(stub, workspace, provider, loop_cap=1)
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    await turn.until("loop_cap_reached")
    await stub.CancelTurn(pb.CancelTurnRequest(session_id=session.id))
    events = await turn.finish()
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
    assert_history_valid(await messages(stub, session.id))


async def test_mode_switch_between_turns(stub: Stub, workspace: Path) -> None:
    write = tool_call("write_file", path="m.txt", content="m")
    provider = scripted([write], [{"text": "refused"}], [write], [{"text": "done"}])
    session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_READ_ONLY)
    events = await run_turn(stub, session.id, "write")
    assert next(iter(finished_calls(events).values())).output.startswith("refused:")
    await stub.UpdateSession(
        pb.UpdateSessionRequest(
            session=spb.Session(id=session.id, approval_mode=spb.APPROVAL_MODE_AUTO),
            update_mask=FieldMask(paths=["approval_mode"]),
        )
    )
    events = await run_turn(stub, session.id, "write now")
    assert "approval_requested" not in kinds(events)
    assert (workspace / "m.txt").read_text() == "m"


async def test_rules_can_be_set_and_revoked_through_update(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace, mode=CONFIRM)
    rules = [
        spb.ApprovalRule(tool_name="bash", command_prefix="pytest"),
        spb.ApprovalRule(tool_name="write_file"),
    ]
    updated = (
        await stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=spb.Session(id=session.id, approval_rules=rules),
                update_mask=FieldMask(paths=["approval_rules"]),
            )
        )
    ).session
    assert list(updated.approval_rules) == rules
    for bad, fragment in [
        (spb.ApprovalRule(tool_name="nope"), "is not a tool"),
        (spb.ApprovalRule(tool_name="write_file", command_prefix="x"), "only for the bash tool"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.UpdateSession(
                pb.UpdateSessionRequest(
                    session=spb.Session(id=session.id, approval_rules=[bad]),
                    update_mask=FieldMask(paths=["approval_rules"]),
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in (
            err.value.details() or ""
        )


async def test_file_changes_are_listed_per_turn(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [
            tool_call("write_file", path="a.txt", content="1"),
            tool_call("write_file", path="b/c.txt", content="2"),
        ],
        [{"text": "one"}],
        [
            tool_call("edit_file", path="a.txt", old_string="1", new_string="3"),
            tool_call("delete_file", path="b/c.txt"),
        ],
        [{"text": "two"}],
    )
    session = await create_session(stub, workspace, provider)
    first = await run_turn(stub, session.id, "1")
    second = await run_turn(stub, session.id, "2")
    listed = (await stub.ListFileChanges(pb.ListFileChangesRequest(session_id=session.id))).changes
    assert [(c.path, c.change, c.turn_id) for c in listed] == [
        ("a.txt", epb.FILE_CHANGE_KIND_CREATED, first[0].turn_id),
        ("b/c.txt", epb.FILE_CHANGE_KIND_CREATED, first[0].turn_id),
        ("a.txt", epb.FILE_CHANGE_KIND_MODIFIED, second[0].turn_id),
        ("b/c.txt", epb.FILE_CHANGE_KIND_DELETED, second[0].turn_id),
    ]
    only = await stub.ListFileChanges(
        pb.ListFileChangesRequest(session_id=session.id, turn_id=second[0].turn_id, page_size=1)
    )
    assert [c.path for c in only.changes] == ["a.txt"]
    rest = await stub.ListFileChanges(
        pb.ListFileChangesRequest(
            session_id=session.id,
            turn_id=second[0].turn_id,
            page_size=1,
            page_token=only.next_page_token,
        )
    )
    assert [c.path for c in rest.changes] == ["b/c.txt"]


async def test_path_and_symlink_escapes_are_tool_errors(
    stub: Stub, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "out").symlink_to(outside)
    provider = scripted(
        [
            tool_call("write_file", "dotdot", path="../outside/x", content="x"),
            tool_call("write_file", "absolute", path=str(outside / "y"), content="y"),
            tool_call("write_file", "symlink", path="out/z", content="z"),
            tool_call("read_file", "etc", path="/etc/hostname"),
        ],
        [{"text": "ok"}],
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "escape")
    for call_id, result in finished_calls(events).items():
        assert result.is_error and "outside the workspace" in result.output, call_id
    assert list(outside.iterdir()) == []


async def test_bash_commands_are_classified(stub: Stub, workspace: Path) -> None:
    (workspace / "build").mkdir()
    provider = scripted(
        [tool_call("bash", "r", command="ls -la | grep build && git status 2>/dev/null")],
        [tool_call("bash", "m", command="touch made.txt")],
        [tool_call("bash", "d", command="ls; rm -rf build")],
        [tool_call("bash", "d2", command="rm -rf build")],
        [{"text": "ok"}],
    )
    session = await create_session(
        stub,
        workspace,
        provider,
        mode=CONFIRM,
        approval_rules=[spb.ApprovalRule(tool_name="bash", command_prefix="rm -rf")],
    )
    turn = Turn(stub)
    await turn.send(start(session.id, "go"))
    # The read-only pipeline ran without asking; touching a file asks with normal risk.
    asked = (await turn.until("approval_requested")).approval_requested
    assert asked.call_id == "m" and asked.risk == epb.APPROVAL_RISK_NORMAL
    await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
    # A destructive part makes the whole command high risk.
    asked = (await turn.until("approval_requested")).approval_requested
    assert asked.call_id == "d" and asked.risk == epb.APPROVAL_RISK_HIGH
    await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
    # Destructive commands ask even when a rule would allow them.
    asked = (await turn.until("approval_requested")).approval_requested
    assert asked.call_id == "d2" and asked.risk == epb.APPROVAL_RISK_HIGH
    await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
    events = await turn.finish()
    assert kinds(events).count("approval_requested") == 3
    assert (workspace / "made.txt").exists() and (workspace / "build").is_dir()


async def test_deleting_a_file_the_session_created_needs_no_approval(
    server_config: ServerConfig, workspace: Path
) -> None:
    (workspace / "theirs.txt").write_text("not mine\n")
    provider = scripted(
        [tool_call("write_file", "w", path="mine.txt", content="scratch\n")],
        [tool_call("edit_file", "e", path="theirs.txt", old_string="not mine", new_string="ed")],
        [{"text": "made"}],
        [tool_call("delete_file", "d1", path="mine.txt")],
        [tool_call("delete_file", "d2", path="theirs.txt")],
        [{"text": "cleaned"}],
    )
    async with Server(server_config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = await create_session(stub, workspace, provider, mode=CONFIRM)
        turn = Turn(stub)
        await turn.send(start(session.id, "make"))
        for _ in range(2):  # creating and editing ask
            asked = (await turn.until("approval_requested")).approval_requested
            await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
        await turn.finish()
    # Ownership is stored: it survives a restart.
    async with (
        Server(restarted(server_config)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        turn = Turn(stub)
        await turn.send(start(session.id, "clean"))
        asked = (await turn.until("approval_requested")).approval_requested
        assert asked.call_id == "d2"  # mine.txt went without asking; editing gave no ownership
        await turn.send(decide(asked.request_id, epb.DECISION_REJECT))
        await turn.finish()
    assert not (workspace / "mine.txt").exists()
    assert (workspace / "theirs.txt").read_text() == "ed\n"


async def test_ask_user_is_answered_by_a_second_client(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [tool_call("ask_user", "q1", question="Which database?", choices=["sqlite", "postgres"])],
        [tool_call("ask_user", "q2", question="Anything else?")],
        [{"text": "noted"}],
    )
    session = await create_session(stub, workspace, provider, mode=CONFIRM)
    turn = Turn(stub)
    await turn.send(start(session.id, "set it up"))
    asked_event = await turn.until("user_question")
    asked = asked_event.user_question
    assert (asked.call_id, asked.question, list(asked.choices)) == (
        "q1",
        "Which database?",
        ["sqlite", "postgres"],
    )
    # A client attaching late gets the open question first, and answers it.
    late = pb.WatchSessionRequest(session_id=session.id, after_seq=asked_event.seq)
    watch = stub.WatchSession(late)
    seen = (await watch.read()).event
    assert seen.user_question.request_id == asked.request_id
    watch.cancel()
    answer = epb.EngineCommand(
        user_answer=epb.UserAnswer(request_id=asked.request_id, text="sqlite")
    )
    await stub.SubmitCommand(pb.SubmitCommandRequest(session_id=session.id, command=answer))
    with pytest.raises(grpc.aio.AioRpcError) as e:  # the first answer wins
        await stub.SubmitCommand(pb.SubmitCommandRequest(session_id=session.id, command=answer))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The second question is answered on the turn's own stream.
    second = (await turn.until("user_question")).user_question
    await turn.send(
        pb.RunTurnRequest(
            command=epb.EngineCommand(
                user_answer=epb.UserAnswer(request_id=second.request_id, text="no, thanks")
            )
        )
    )
    events = await turn.finish()
    results = finished_calls(events)
    assert results["q1"].output == "sqlite" and not results["q1"].is_error
    assert results["q2"].output == "no, thanks"
    assert kinds(events).count("approval_requested") == 0  # asking needs no approval


async def test_reject_always_adds_a_rule_that_refuses_without_asking(
    workspace: Path, server_config: ServerConfig
) -> None:
    provider = scripted(
        [tool_call("bash", command="git push origin main")],
        [tool_call("bash", command="git push --tags")],  # same rule: refused unasked
        [tool_call("bash", command="ls && git push -f")],  # hidden in a list: refused too
        [tool_call("write_file", path="a", content="1")],
        [tool_call("write_file", path="b", content="2")],  # write_file refused by its rule
        [tool_call("bash", command="ls -a")],  # a reader still runs
        [{"text": "ok"}],
    )
    async with Server(server_config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = await create_session(stub, workspace, provider, mode=CONFIRM)
        turn = Turn(stub)
        await turn.send(start(session.id, "go"))
        asked = (await turn.until("approval_requested")).approval_requested
        await turn.send(decide(asked.request_id, epb.DECISION_REJECT_ALWAYS))
        asked = (await turn.until("approval_requested")).approval_requested
        assert asked.tool_name == "write_file"  # both other pushes were refused unasked
        await turn.send(decide(asked.request_id, epb.DECISION_REJECT_ALWAYS))
        events = await turn.finish()
        assert kinds(events).count("approval_requested") == 2
        resolved = [e.approval_resolved for e in events if kind(e) == "approval_resolved"]
        calls = list(finished_calls(events))
        # Each call decided once: by the human (request id) or, unasked, by the rule named.
        assert [(r.call_id, r.decision, bool(r.request_id)) for r in resolved] == [
            (calls[0], epb.DECISION_REJECT_ALWAYS, True),
            (calls[1], epb.DECISION_REJECT, False),
            (calls[2], epb.DECISION_REJECT, False),
            (calls[3], epb.DECISION_REJECT_ALWAYS, True),
            (calls[4], epb.DECISION_REJECT, False),
        ]
        assert [(r.rule.tool_name, r.rule.command_prefix, r.rule.reject) for r in resolved] == [
            ("", "", False), ("bash", "git push", True), ("bash", "git push", True),
            ("", "", False), ("write_file", "", True),
        ]  # fmt: skip
        outputs = [(c.is_error, c.output) for c in finished_calls(events).values()]
        assert outputs[:5] == [
            (True, "rejected by the user"),
            (True, "refused by the session's rule: never run bash git push"),
            (True, "refused by the session's rule: never run bash git push"),
            (True, "rejected by the user"),
            (True, "refused by the session's rule: never run write_file"),
        ]
        assert outputs[5][0] is False
        assert not (workspace / "a").exists() and not (workspace / "b").exists()

    # Stored: a restarted server refuses as well; a reject rule wins over an allow rule.
    async with (
        Server(restarted(server_config)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
        assert [(r.tool_name, r.command_prefix, r.reject) for r in got.approval_rules] == [
            ("bash", "git push", True),
            ("write_file", "", True),
        ]
        rules = [*got.approval_rules, spb.ApprovalRule(tool_name="bash", command_prefix="git push")]
        again = scripted([tool_call("bash", command="git push")], [{"text": "done"}])
        other = await create_session(stub, workspace, again, mode=CONFIRM, approval_rules=rules)
        events = await run_turn(stub, other.id, "push")
        assert "approval_requested" not in kinds(events)
        (call,) = finished_calls(events).values()
        assert call.output.startswith("refused by the session's rule")
