"""`kodad acp` beyond one prompt: the loop cap, free questions as forms, rich prompts,
session listing, forks, resume, close, models, slash commands, editor MCP servers, tokens."""

from __future__ import annotations

import base64
import dataclasses
import sys
from pathlib import Path

import grpc
import pytest
from acp import RequestError, text_block
from acp.schema import (
    AvailableCommandsUpdate,
    ClientCapabilities,
    ElicitationCapabilities,
    ElicitationFormCapabilities,
    EmbeddedResourceContentBlock,
    EnvVariable,
    ImageContentBlock,
    McpServerStdio,
    ResourceContentBlock,
    TextResourceContents,
)

from kodad.config import Security, ServerConfig
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.acp_harness import Editor, acp_agent, grpc_session, service, stored_events_of
from tests.conftest import FAKES
from tests.helpers import create_session, kind, scripted, tool_call
from tests.integration.test_security import tokens_toml

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


async def test_the_loop_cap_asks_to_continue_or_stop(
    server_config: ServerConfig, workspace: Path
) -> None:
    rounds = [[tool_call("list_dir", path=".")] for _ in range(3)] + [[{"text": "done"}]]
    async with service(server_config) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = pb_grpc.SessionServiceStub(ch)
            made = await create_session(stub, workspace, scripted(*rounds), loop_cap=1)
        editor = Editor(["continue", "stop"])
        async with acp_agent(editor, "--connect", server.address) as conn:
            done = await conn.prompt(session_id=made.id, prompt=[text_block("list")])
        assert done.stop_reason == "max_turn_requests"
        assert [[o.option_id for o in options] for _, options in editor.asked] == [
            ["continue", "stop"],
            ["continue", "stop"],
        ]
        assert "made 1 tool rounds" in editor.asked[0][0].title


async def test_a_free_question_is_a_form_where_the_editor_has_forms(
    server_config: ServerConfig, workspace: Path
) -> None:
    ask = tool_call("ask_user", "q", question="What should the file be called?")
    rounds = ([ask], [ask], [{"text": "named"}])
    forms = ClientCapabilities(
        elicitation=ElicitationCapabilities(form=ElicitationFormCapabilities())
    )
    async with service(server_config, *rounds) as server:
        editor = Editor()
        editor.form_answers = [{"answer": "notes.md"}, None]  # the second is declined
        async with acp_agent(editor, "--connect", server.address, capabilities=forms) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            done = await conn.prompt(session_id=sid, prompt=[text_block("name it")])
            assert done.stop_reason == "end_turn"
        assert not editor.asked  # a form, not a permission request
        message, mode = editor.forms[0]
        assert message == "What should the file be called?" and mode.tool_call_id == "q"
        events = await stored_events_of(server, sid)
        outputs = [e.tool_call_finished.output for e in events if kind(e) == "tool_call_finished"]
        assert outputs[0] == "notes.md"
        assert outputs[1].startswith("Nobody can answer questions here")


async def test_images_links_and_embedded_files_reach_the_model(
    server_config: ServerConfig, workspace: Path
) -> None:
    async with service(server_config) as server:  # the echo provider
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            prompt = [
                text_block("look at"),
                ResourceContentBlock(type="resource_link", name="a.py", uri="file:///w/a.py"),
                EmbeddedResourceContentBlock(
                    type="resource",
                    resource=TextResourceContents(uri="file:///w/b.py", text="print(1)\n"),
                ),
                ImageContentBlock(type="image", data=PNG, mime_type="image/png"),
            ]
            assert (await conn.prompt(session_id=sid, prompt=prompt)).stop_reason == "end_turn"
            assert editor.text(sid) == (
                "You said: look at\n\n[a.py](file:///w/a.py)\n\n"
                '<context uri="file:///w/b.py">\nprint(1)\n</context>'
            )
            bad = [ImageContentBlock(type="image", data=PNG, mime_type="image/tiff")]
            with pytest.raises(RequestError) as refused:
                await conn.prompt(session_id=sid, prompt=bad)
            assert refused.value.code == -32602 and "image/tiff" in str(refused.value.data)
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = pb_grpc.SessionServiceStub(ch)
            history = await stub.ListMessages(pb.ListMessagesRequest(session_id=sid))
        user = history.messages[0]
        assert [i.mime_type for i in user.images] == ["image/png"]


async def test_sessions_list_fork_resume_close_and_the_model_option(
    server_config: ServerConfig, workspace: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    async with service(server_config) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            first = await conn.new_session(cwd=str(workspace), mcp_servers=[])
            await conn.new_session(cwd=str(other), mcp_servers=[])
            (model,) = first.config_options
            assert (model.id, model.current_value) == ("model", "scripted")
            await conn.prompt(session_id=first.session_id, prompt=[text_block("hello")])

            listed = await conn.list_sessions(cwd=str(workspace))
            assert [s.session_id for s in listed.sessions] == [first.session_id]
            assert listed.sessions[0].updated_at.endswith("Z")
            assert len((await conn.list_sessions()).sessions) == 2

            fork = await conn.fork_session(session_id=first.session_id, cwd=str(workspace))
            assert fork.session_id != first.session_id
            await conn.resume_session(session_id=fork.session_id, cwd=str(workspace))
            assert await conn.prompt(session_id=fork.session_id, prompt=[text_block("again")])
            assert editor.text(fork.session_id) == "You said: again"
            await conn.close_session(session_id=fork.session_id)

            changed = await conn.set_config_option(
                config_id="model", session_id=first.session_id, value="scripted"
            )
            assert changed.config_options[0].current_value == "scripted"
            with pytest.raises(RequestError) as bad:
                await conn.set_config_option(
                    config_id="model", session_id=first.session_id, value="gpt-9"
                )
            assert "not one of scripted" in str(bad.value.data)
            with pytest.raises(RequestError) as gone:
                await conn.resume_session(session_id="s_missing", cwd=str(workspace))
            assert gone.value.code == -32002
        forked = await grpc_session(server, fork.session_id)
        assert forked.message_count == 4  # the first session's two, then its own two


async def test_slash_commands_are_announced_and_run(
    server_config: ServerConfig, workspace: Path
) -> None:
    async with service(server_config) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            for text in ("one", "two", "three"):
                await conn.prompt(session_id=sid, prompt=[text_block(text)])
            done = await conn.prompt(session_id=sid, prompt=[text_block("/compact")])
            assert done.stop_reason == "end_turn"
            assert editor.text(sid).endswith("are now one summary.")
            await conn.prompt(session_id=sid, prompt=[text_block("/fork")])
            assert "Forked into session s_" in editor.text(sid)
        (announced,) = editor.of(sid, AvailableCommandsUpdate)
        assert [c.name for c in announced.available_commands] == ["compact", "fork"]


async def test_the_editors_mcp_servers_become_the_sessions(
    server_config: ServerConfig, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = McpServerStdio(name="notes server", command=sys.executable,
                          args=[str(FAKES / "mcp_server.py")], env=[])  # fmt: skip
    rounds = ([tool_call("notes-server__add", a=2, b=3)], [{"text": "five"}])
    async with service(server_config, *rounds) as server:
        editor = Editor(["allow_once"])  # an editor's server is untrusted: its tools ask
        async with acp_agent(editor, "--connect", server.address) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[fake])).session_id
            assert (await conn.prompt(session_id=sid, prompt=[text_block("add")])).stop_reason == (
                "end_turn"
            )
            key = EnvVariable(name="KODAD_TEST_API_KEY", value="k")
            secret = McpServerStdio(name="s", command="x", args=[], env=[key])
            with pytest.raises(RequestError) as refused:
                await conn.new_session(cwd=str(workspace), mcp_servers=[secret])
            assert "stores no secrets" in str(refused.value.data)
        session = await grpc_session(server, sid)
        assert [(s.name, s.trusted) for s in session.mcp_servers] == [("notes-server", False)]
        events = await stored_events_of(server, sid)
        finished = [e.tool_call_finished for e in events if kind(e) == "tool_call_finished"]
        assert finished[0].output == "5" and not finished[0].is_error


async def test_a_service_that_needs_a_token(
    server_config: ServerConfig, workspace: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(tokens_toml({"alice": "tok-alice"}))
    config = dataclasses.replace(server_config, security=Security(tokens_file=tokens))
    async with Server(config) as server:
        editor = Editor()
        async with acp_agent(editor, "--connect", server.address, env={"KODAD_TOKEN": ""}) as conn:
            hello = editor.hello
            assert [m.id for m in hello.auth_methods] == ["kodad-token"]
            with pytest.raises(RequestError) as refused:
                await conn.new_session(cwd=str(workspace), mcp_servers=[])
            assert refused.value.code == -32000
            with pytest.raises(RequestError):
                await conn.authenticate(method_id="kodad-token")
        with_token = {"KODAD_TOKEN": "tok-alice"}
        async with acp_agent(editor, "--connect", server.address, env=with_token) as conn:
            assert editor.hello.auth_methods == []
            await conn.authenticate(method_id="kodad-token")
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=[])).session_id
            await conn.prompt(session_id=sid, prompt=[text_block("hi")])
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = pb_grpc.SessionServiceStub(ch)
            got = await stub.GetSession(
                pb.GetSessionRequest(session_id=sid),
                metadata=(("authorization", "Bearer tok-alice"),),
            )
        assert got.session.tenant == "alice"
        assert got.session.state == spb.SESSION_STATE_IDLE
