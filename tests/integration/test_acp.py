"""`kodad acp` as an editor runs it: a subprocess driven by the ACP SDK's client side
(ClientSideConnection through spawn_agent_process), against a real kodad service."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import grpc
import pytest
from acp import PROTOCOL_VERSION, RequestError, spawn_agent_process, text_block
from acp.schema import (
    CurrentModeUpdate,
    PermissionOption,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    UserMessageChunk,
)

from kodad.config import ServerConfig
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.acp_harness import (
    KODAD_ACP,
    Editor,
    acp_agent,
    grpc_session,
    service,
    stored_events_of,
)
from tests.helpers import create_session, kind, scripted, tool_call


async def test_a_prompt_streams_the_answer_and_ends_the_turn(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = [
        {"text": "Hello"},
        {"text": ", editor"},
        {"usage": {"input_tokens": 7, "output_tokens": 2}},
    ]
    async with service(server_config, rounds) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            new = await conn.new_session(cwd=str(workspace), mcp_servers=[])
            assert new.modes.current_mode_id == "confirm"  # kodad's default
            assert [m.id for m in new.modes.available_modes] == ["read-only", "confirm", "auto"]
            done = await conn.prompt(session_id=new.session_id, prompt=[text_block("hi")])
            assert done.stop_reason == "end_turn"
            assert (done.usage.input_tokens, done.usage.output_tokens) == (7, 2)
            assert editor.text(new.session_id) == "Hello, editor"
            # The user's own prompt is not echoed back live.
            assert not editor.of(new.session_id, UserMessageChunk)
        session = await grpc_session(server, new.session_id)  # the ACP id is kodad's id
        assert session.workspace == str(workspace)
        assert session.approval_mode == spb.APPROVAL_MODE_CONFIRM


async def test_permissions_allow_once_reject_once_and_allow_always(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = (
        [tool_call("write_file", "w1", path="a.txt", content="one\n")],
        [tool_call("write_file", "w2", path="b.txt", content="two\n")],
        [{"text": "first done"}],
        [tool_call("edit_file", "w3", path="a.txt", old_string="one", new_string="ONE")],
        [tool_call("edit_file", "w4", path="a.txt", old_string="ONE", new_string="One")],
        [{"text": "second done"}],
    )
    async with service(server_config, *rounds) as server:
        editor = Editor(["allow_once", "reject_once", "allow_always"])
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            done = await conn.prompt(session_id=sid, prompt=[text_block("write two files")])
            assert done.stop_reason == "end_turn"
            assert (workspace / "a.txt").read_text() == "one\n"
            assert not (workspace / "b.txt").exists()
            call, options = editor.asked[0]
            assert call.tool_call_id == "w1" and call.title == "Create a.txt (1 line)"
            assert [o.kind for o in options] == [
                "allow_once", "allow_always", "reject_once", "reject_always",
            ]  # fmt: skip
            start = editor.of(sid, ToolCallStart)[0]
            assert (start.tool_call_id, start.kind, start.title) == ("w1", "edit", "Write a.txt")
            assert start.locations[0].path == str(workspace / "a.txt")
            (diff,) = start.content
            assert (diff.type, diff.path, diff.old_text, diff.new_text) == (
                "diff", str(workspace / "a.txt"), None, "one\n",
            )  # fmt: skip
            finals = {u.tool_call_id: u.status for u in editor.of(sid, ToolCallProgress)}
            assert finals == {"w1": "completed", "w2": "failed"}

            done = await conn.prompt(session_id=sid, prompt=[text_block("again")])
            assert done.stop_reason == "end_turn"
            assert len(editor.asked) == 3  # the second edit ran under the allow_always rule
            assert (workspace / "a.txt").read_text() == "One\n"
            edit = next(u for u in editor.of(sid, ToolCallStart) if u.tool_call_id == "w3")
            assert (edit.content[0].old_text, edit.content[0].new_text) == ("one", "ONE")
        session = await grpc_session(server, sid)
        assert [(r.tool_name, r.reject) for r in session.approval_rules] == [("edit_file", False)]


async def test_reject_always_stores_a_reject_rule(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = (
        [tool_call("bash", "b1", command="git push origin main")],
        [tool_call("bash", "b2", command="git push --tags")],
        [{"text": "gave up"}],
    )
    async with service(server_config, *rounds) as server:
        editor = Editor(["reject_always"])
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            assert (await conn.prompt(session_id=sid, prompt=[text_block("push")])).stop_reason == (
                "end_turn"
            )
            assert len(editor.asked) == 1
            start = editor.of(sid, ToolCallStart)[0]
            assert (start.kind, start.title) == ("execute", "`git push origin main`")
        session = await grpc_session(server, sid)
        assert [(r.command_prefix, r.reject) for r in session.approval_rules] == [
            ("git push", True)
        ]


async def test_cancel_while_a_permission_is_open(
    server_config: ServerConfig, workspace: Path
) -> None:
    async def cancel_then_answer(call: ToolCallUpdate, options: list[PermissionOption]) -> None:
        await editor.conn.cancel(session_id=sid)
        return None  # as the spec asks: the open request is answered "cancelled"

    editor = Editor([cancel_then_answer])
    async with service(server_config, [tool_call("write_file", path="x", content="x")]) as server:
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            done = await conn.prompt(session_id=sid, prompt=[text_block("write x")])
            assert done.stop_reason == "cancelled"
        assert not (workspace / "x").exists()
        events = await stored_events_of(server, sid)
        assert events[-1].turn_ended.reason == epb.TURN_END_REASON_CANCELLED
        assert (await grpc_session(server, sid)).state == spb.SESSION_STATE_IDLE


async def test_load_replays_a_grpc_made_session_as_it_was_sent_live(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = (
        [{"thinking": "plan"}, tool_call("write_file", "w", path="n.txt", content="n\n")],
        [tool_call("todo_write", "t", todos=[{"content": "test it", "status": "in_progress"}])],
        [tool_call("bash", "b", command="printf 'one\\ntwo\\n'")],
        [{"text": "all done"}],
    )
    async with service(server_config) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = pb_grpc.SessionServiceStub(ch)
            made = await create_session(stub, workspace, scripted(*rounds))  # AUTO, over gRPC
        live = Editor()
        async with acp_agent(live, "--connect", server.address) as conn:
            done = await conn.prompt(session_id=made.id, prompt=[text_block("do it")])
            assert done.stop_reason == "end_turn"
        replay = Editor()
        async with acp_agent(replay, "--connect", server.address) as conn:
            loaded = await conn.load_session(cwd=str(workspace), session_id=made.id, mcp_servers=[])
            assert loaded.modes.current_mode_id == "auto"
            # Every history update arrived before the response.
            replayed = [
                u for _, u in replay.updates if u.session_update != "available_commands_update"
            ]
        assert isinstance(replayed[0], UserMessageChunk) and replayed[0].content.text == "do it"
        sent_live = [u for _, u in live.updates if u.session_update != "available_commands_update"]
        assert [u.model_dump() for u in replayed[1:]] == [u.model_dump() for u in sent_live]
        statuses = {u.tool_call_id: u.status for u in replayed if isinstance(u, ToolCallProgress)}
        assert statuses == {"w": "completed", "t": "completed", "b": "completed"}
        (plan,) = [u for u in replayed if u.session_update == "plan"]
        assert [(e.content, e.status) for e in plan.entries] == [("test it", "in_progress")]
        bash = [u for u in replayed if isinstance(u, ToolCallProgress) and u.tool_call_id == "b"]
        assert "one\ntwo" in bash[-1].content[0].content.text  # the command's output
        kinds_seen = [u.session_update for u in replayed]
        assert "agent_thought_chunk" in kinds_seen and "usage_update" in kinds_seen


async def test_set_mode_changes_the_sessions_approval_mode(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = ([tool_call("write_file", path="m.txt", content="m")], [{"text": "ok"}])
    async with service(server_config, *rounds) as server:
        editor = Editor()  # no answers: asking would fail the test
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            await conn.set_session_mode(session_id=sid, mode_id="auto")
            assert editor.of(sid, CurrentModeUpdate)[-1].current_mode_id == "auto"
            assert (await conn.prompt(session_id=sid, prompt=[text_block("go")])).stop_reason == (
                "end_turn"
            )
            assert (workspace / "m.txt").read_text() == "m" and not editor.asked
            with pytest.raises(RequestError) as bad:
                await conn.set_session_mode(session_id=sid, mode_id="yolo")
            assert "not one of read-only, confirm, auto" in str(bad.value.data)
        assert (await grpc_session(server, sid)).approval_mode == spb.APPROVAL_MODE_AUTO


async def test_ask_user_choices_are_permission_options(
    server_config: ServerConfig, workspace: Path
) -> None:
    ask = tool_call("ask_user", "q", question="Which colour?", choices=["red", "blue"])
    async with service(server_config, [ask], [{"text": "blue it is"}]) as server:
        editor = Editor(["choice-1"])
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            done = await conn.prompt(session_id=sid, prompt=[text_block("pick")])
            assert done.stop_reason == "end_turn"
            call, options = editor.asked[0]
            assert call.tool_call_id == "q" and call.title == "Which colour?"
            assert [o.name for o in options] == ["red", "blue", "Let the agent decide"]
        events = await stored_events_of(server, sid)
        finished = [e.tool_call_finished for e in events if kind(e) == "tool_call_finished"]
        assert finished[0].output == "blue"


async def test_a_sub_agents_tool_calls_reach_the_editor(
    server_config: ServerConfig, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("hi\n")
    profiles = workspace / ".kodad" / "agents"
    profiles.mkdir(parents=True)
    (profiles / "reviewer.json").write_text(json.dumps({"name": "reviewer", "description": "r"}))
    rounds = (
        [tool_call("invoke_agent", "a", agent="reviewer", task="read a.txt")],
        [{"text": "reviewed"}],
    )
    reviewer = [[tool_call("read_file", "r", path="a.txt")], [{"text": "it says hi"}]]
    async with service(server_config, *rounds, reviewer=reviewer) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            await conn.set_session_mode(session_id=sid, mode_id="auto")
            assert (
                await conn.prompt(session_id=sid, prompt=[text_block("review")])
            ).stop_reason == ("end_turn")
        starts = editor.of(sid, ToolCallStart)
        assert [s.title for s in starts] == ["Agent reviewer: read a.txt", "Read a.txt"]
        child = starts[1].field_meta["kodad"]["subagentSessionId"]
        assert starts[1].tool_call_id == f"{child}/r" and starts[1].kind == "read"
        assert starts[1].field_meta["kodad"]["parentCallId"] == "a"
        updates = {u.tool_call_id: u for u in editor.of(sid, ToolCallProgress)}
        assert updates[f"{child}/r"].status == "completed"
        assert "it says hi" in updates["a"].content[0].content.text


async def test_a_failed_provider_is_a_json_rpc_error_with_kodads_code(
    server_config: ServerConfig, workspace: Path
) -> None:
    failing = [{"error": {"code": "auth", "message": "the key was refused"}}]
    async with service(server_config, failing) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            with pytest.raises(RequestError) as failed:
                await conn.prompt(session_id=sid, prompt=[text_block("hi")])
            assert "the key was refused" in str(failed.value)
            assert failed.value.data["errorCode"] == "auth"
            with pytest.raises(RequestError) as missing:
                await conn.load_session(cwd=str(workspace), session_id="s_nope", mcp_servers=[])
            assert missing.value.code == -32002


async def test_the_default_is_a_private_sidecar_that_dies_with_the_adapter(
    tmp_path: Path, workspace: Path
) -> None:
    env = {
        "KODAD_DATA_DIR": str(tmp_path / "data"),
        "KODAD_SCRIPT_JSON": json.dumps({"rounds": [[{"text": "from the sidecar"}]]}),
        "KODAD_CONNECT": "",
    }
    editor = Editor()
    async with spawn_agent_process(
        editor, sys.executable, *KODAD_ACP, env={**os.environ, **env},
        transport_kwargs={"stderr": None},
    ) as (conn, process):  # fmt: skip
        await conn.initialize(protocol_version=PROTOCOL_VERSION)
        sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
        assert (await conn.prompt(session_id=sid, prompt=[text_block("hi")])).stop_reason == (
            "end_turn"
        )
        assert editor.text(sid) == "from the sidecar"
        children = _children(process.pid)
        assert children, "kodad acp should run its own kodad serve"
        listed = await conn.list_sessions(cwd=str(workspace))
        assert [s.session_id for s in listed.sessions] == [sid]
        assert process.stdin is not None
        process.stdin.close()  # the editor goes away
        assert await asyncio.wait_for(process.wait(), 30) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)
    assert (tmp_path / "data" / "kodad.db").exists()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found
