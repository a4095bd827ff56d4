"""MCP tools through a real server, against tests/fakes/mcp_server.py over stdio and over
streamable HTTP: naming, schemas, approvals, trust, errors, sharing, restart, close."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kodad.config import ServerConfig
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from kodad.tools.shell import processes_with
from tests.fakes.llm_server import FakeLLM, Stream, text_chunks, tool_call_chunks
from tests.helpers import (
    Turn,
    create_session,
    decide,
    exits,
    finished_calls,
    kind,
    run_turn,
    scripted,
    start,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub
SERVER = str(Path(__file__).parent.parent / "fakes" / "mcp_server.py")
CONFIRM = spb.APPROVAL_MODE_CONFIRM


def stdio(name: str = "notes", trusted: bool = False) -> spb.McpServer:
    return spb.McpServer(name=name, command=[sys.executable, SERVER], trusted=trusted)


def serve_http(*args: str) -> Iterator[str]:
    """The test MCP server over streamable HTTP (`args` after "http"); yields its URL."""
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    yield from serve_http()


async def test_stdio_tools_reach_the_model_with_their_schemas_and_ask_for_approval(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    arguments = json.dumps({"name": "n.txt", "text": "from mcp"})
    fake_llm.replies.extend(
        [
            Stream(tool_call_chunks([("c1", "notes__write_note", arguments)])),
            Stream(text_chunks("noted")),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url
    )
    session = await create_session(stub, workspace, provider, CONFIRM, mcp_servers=[stdio()])
    assert list(session.mcp_servers) == [stdio()]
    turn = Turn(stub)
    await turn.send(start(session.id, "take a note"))
    asked = (await turn.until("approval_requested")).approval_requested
    assert asked.tool_name == "notes__write_note"
    assert "MCP server 'notes'" in asked.summary and '"text": "from mcp"' in asked.preview
    assert not (workspace / "n.txt").exists()
    await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
    events = await turn.finish()

    result = finished_calls(events)["c1"]
    assert not result.is_error
    assert (workspace / "n.txt").read_text() == "from mcp"  # it runs in the workspace
    offered = {t["function"]["name"]: t["function"] for t in fake_llm.requests[0].body["tools"]}
    assert "read_file" in offered and "notes__add" in offered
    assert offered["notes__add"]["parameters"]["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert offered["notes__add"]["description"] == "Adds two integers."


async def test_http_server_trusted_runs_unasked_and_failures_are_tool_errors(
    stub: Stub, workspace: Path, http_url: str
) -> None:
    server = spb.McpServer(name="calc", url=http_url, trusted=True)
    provider = scripted(
        [
            tool_call("calc__add", "a", a=2, b=3),
            tool_call("calc__fail", "f", why="no luck"),
            tool_call("calc__nope", "n"),
        ],
        [{"text": "done"}],
    )
    session = await create_session(stub, workspace, provider, CONFIRM, mcp_servers=[server])
    events = await run_turn(stub, session.id, "add")
    assert "approval_requested" not in [kind(e) for e in events]  # trusted
    results = finished_calls(events)
    assert (results["a"].output, results["a"].is_error) == ("5", False)
    assert results["f"].is_error
    assert results["n"].is_error and "unknown tool 'calc__nope'" in results["n"].output


async def test_untrusted_http_tools_ask_and_read_only_mode_refuses_them(
    stub: Stub, workspace: Path, http_url: str
) -> None:
    server = spb.McpServer(name="calc", url=http_url)
    provider = scripted([tool_call("calc__add", "a", a=1, b=1)], [{"text": "done"}])
    session = await create_session(stub, workspace, provider, CONFIRM, mcp_servers=[server])
    turn = Turn(stub)
    await turn.send(start(session.id, "add"))
    asked = (await turn.until("approval_requested")).approval_requested
    assert asked.tool_name == "calc__add"
    await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
    assert finished_calls(await turn.finish())["a"].output == "2"

    provider = scripted([tool_call("calc__add", "a", a=1, b=1)], [{"text": "done"}])
    read_only = await create_session(
        stub, workspace, provider, spb.APPROVAL_MODE_READ_ONLY, mcp_servers=[server]
    )
    result = finished_calls(await run_turn(stub, read_only.id, "add"))["a"]
    assert result.is_error and "read-only mode" in result.output


async def test_a_server_is_shared_by_turns_restarted_after_a_crash_and_closed_with_the_session(
    stub: Stub, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's processes (bwrap and the server in it) are found by a variable it is given.
    mark = f"MARK={uuid.uuid4().hex}"
    monkeypatch.setenv("KODAD_TEST_MARK", mark.split("=")[1])
    server = stdio(trusted=True)
    server.env_from["MARK"] = "KODAD_TEST_MARK"
    provider = scripted(
        [tool_call("notes__pid", "p1")],
        [{"text": "one"}],
        [tool_call("notes__pid", "p2"), tool_call("notes__crash", "c")],
        [{"text": "two"}],
        [tool_call("notes__pid", "p3")],
        [{"text": "three"}],
    )
    session = await create_session(stub, workspace, provider, mcp_servers=[server])
    first = finished_calls(await run_turn(stub, session.id, "pid"))["p1"].output
    first_processes = processes_with({mark})
    assert first_processes
    second = finished_calls(await run_turn(stub, session.id, "pid and crash"))
    assert second["p2"].output == first  # the same process for the session's turns
    assert second["c"].is_error and "MCP server 'notes' failed" in second["c"].output
    assert all(exits(pid) for pid in first_processes)
    third = finished_calls(await run_turn(stub, session.id, "pid"))["p3"].output
    third_processes = processes_with({mark})
    assert third != first and third_processes  # started again
    assert not any(exits(pid, timeout_s=0) for pid in third_processes)

    await stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id))
    assert all(exits(pid) for pid in third_processes)  # closed with the session


async def test_a_server_that_cannot_start_is_a_warning_and_its_tools_are_left_out(
    stub: Stub, workspace: Path
) -> None:
    broken = spb.McpServer(name="gone", command=[str(workspace / "no-such-program")])
    provider = scripted([tool_call("gone__anything", "g")], [{"text": "fine"}])
    session = await create_session(stub, workspace, provider, mcp_servers=[broken])
    events = await run_turn(stub, session.id, "try")
    warnings = [e.notice.text for e in events if kind(e) == "notice"]
    assert any("MCP server 'gone' could not start" in w for w in warnings), warnings
    assert finished_calls(events)["g"].is_error
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (spb.McpServer(name="a__b", url="http://x/mcp"), "mcp_servers[0].name"),
        (spb.McpServer(name="x", url="http://x/mcp", command=["y"]), "exactly one of"),
        (spb.McpServer(name="x"), "exactly one of"),
        (spb.McpServer(name="x", url="ftp://x"), "http or https"),
        (spb.McpServer(name="x", command=["y"], header_env={"A": "B"}), "for url servers"),
        (spb.McpServer(name="x", url="http://x/mcp", env_from={"A": "B"}), "command servers"),
        (spb.McpServer(name="x", url="http://x/mcp", header_env={"A": "not a var"}), "maps"),
    ],
)
async def test_bad_server_configurations_are_invalid_arguments(
    stub: Stub, workspace: Path, config: spb.McpServer, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_session(stub, workspace, mcp_servers=[config])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in (err.value.details() or "")


async def test_a_profile_names_servers_and_update_session_changes_them(
    server_config: ServerConfig, workspace: Path, tmp_path: Path, http_url: str
) -> None:
    agents = tmp_path / "agents"  # the operator's profiles: they may trust a server
    agents.mkdir()
    (agents / "calc.toml").write_text(
        f'[[mcp_servers]]\nname = "calc"\nurl = "{http_url}"\ntrusted = true\n'
    )
    engine = dataclasses.replace(server_config.engine, profiles_dir=agents)
    config = dataclasses.replace(server_config, engine=engine)
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        request = pb.GetAgentProfileRequest(name="calc", workspace=str(workspace))
        profile = (await stub.GetAgentProfile(request)).profile
        expected = spb.McpServer(name="calc", url=http_url, trusted=True)
        assert list(profile.mcp_servers) == [expected]
        provider = scripted([tool_call("calc__add", "a", a=20, b=22)], [{"text": "42"}])
        session = await create_session(stub, workspace, provider, CONFIRM, profile="calc")
        assert finished_calls(await run_turn(stub, session.id, "add"))["a"].output == "42"

        session.mcp_servers.append(stdio())
        update = pb.UpdateSessionRequest(session=session)
        update.update_mask.paths.append("mcp_servers")
        updated = (await stub.UpdateSession(update)).session
        assert [s.name for s in updated.mcp_servers] == ["notes"]


# Not a string a random session id can hold (ids are lowercase letters and digits): "t0k"
# was, once in a CI run.
TOKEN = "t0k-S3CRET"


@pytest.fixture(scope="module")
def secured_url() -> Iterator[str]:
    """The HTTP server refusing requests without `Authorization: Bearer TOKEN`."""
    yield from serve_http(TOKEN)


async def test_http_headers_are_read_from_the_services_environment(
    stub: Stub, workspace: Path, secured_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODAD_TEST_MCP_AUTHORIZATION", f"Bearer {TOKEN}")
    server = spb.McpServer(
        name="calc",
        url=secured_url,
        trusted=True,
        header_env={"Authorization": "KODAD_TEST_MCP_AUTHORIZATION"},
    )
    provider = scripted([tool_call("calc__add", "a", a=3, b=4)], [{"text": "7"}])
    session = await create_session(stub, workspace, provider, mcp_servers=[server])
    assert TOKEN not in str(session)  # the session names the variable, never the secret
    assert finished_calls(await run_turn(stub, session.id, "add"))["a"].output == "7"

    for header_env, why in (
        ({}, "could not start"),  # refused by the server
        ({"Authorization": "KODAD_TEST_UNSET_VARIABLE"}, "KODAD_TEST_UNSET_VARIABLE"),
    ):
        unauthorised = spb.McpServer(name="calc", url=secured_url, header_env=header_env)
        provider = scripted([{"text": "no tools"}])
        other = await create_session(stub, workspace, provider, mcp_servers=[unauthorised])
        events = await run_turn(stub, other.id, "add")
        warnings = [e.notice.text for e in events if kind(e) == "notice"]
        assert any("MCP server 'calc'" in w and why in w for w in warnings), warnings


async def test_a_stdio_server_gets_only_the_variables_it_is_given(
    stub: Stub, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODAD_TEST_FOR_MCP", "visible")
    monkeypatch.setenv("KODAD_TEST_API_KEY", "secret")
    server = spb.McpServer(
        name="notes",
        command=[sys.executable, SERVER],
        trusted=True,
        env_from={"GIVEN": "KODAD_TEST_FOR_MCP"},
    )
    provider = scripted(
        [
            tool_call("notes__env", "given", variable="GIVEN"),
            tool_call("notes__env", "key", variable="KODAD_TEST_API_KEY"),
        ],
        [{"text": "done"}],
    )
    session = await create_session(stub, workspace, provider, mcp_servers=[server])
    results = finished_calls(await run_turn(stub, session.id, "env"))
    assert results["given"].output == "visible"
    assert results["key"].output == "<unset>"
