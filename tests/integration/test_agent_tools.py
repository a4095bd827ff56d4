"""Memory, recall_context and web_fetch through a real server."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from kodad.config import ServerConfig
from kodad.domain.model import SessionRecord
from kodad.engine.profiles import DEFAULT as DEFAULT_PROFILE
from kodad.engine.prompts import system_prompt
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import (
    Turn,
    create_session,
    decide,
    finished_calls,
    run_turn,
    scripted,
    start,
    tool_call,
)

Stub = pb_grpc.SessionServiceStub
PAGE = (
    "<html><head><title>T</title><style>p{color:red}</style></head><body>"
    "<h1>Kodad &amp; friends</h1><script>alert('x')</script><p>Hello   <b>web</b></p></body></html>"
)


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("location", "/page")
                self.end_headers()
                return
            data = PAGE.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_web_fetch_of_a_loopback_page_when_allowed(
    server_config: ServerConfig, workspace: Path, site: str
) -> None:
    config = dataclasses.replace(server_config, allow_private_fetch=True)
    async with Server(config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        provider = scripted([tool_call("web_fetch", "f", url=f"{site}/moved")], [{"text": "ok"}])
        session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
        turn = Turn(stub)
        await turn.send(start(session.id, "read it"))
        asked = (await turn.until("approval_requested")).approval_requested
        assert asked.tool_name == "web_fetch"  # it reaches out: CONFIRM asks
        await turn.send(decide(asked.request_id, epb.DECISION_APPROVE))
        result = finished_calls(await turn.finish())["f"]
    assert not result.is_error
    assert result.output == "Kodad & friends\n\nHello web"  # no head, style or script


async def test_web_fetch_refuses_private_addresses_by_default(
    stub: Stub, workspace: Path, site: str
) -> None:
    provider = scripted([tool_call("web_fetch", "f", url=f"{site}/page")], [{"text": "ok"}])
    session = await create_session(stub, workspace, provider)
    result = finished_calls(await run_turn(stub, session.id, "read it"))["f"]
    assert result.is_error
    assert "private, loopback or reserved address (127.0.0.1)" in result.output


async def test_memory_is_kept_and_put_into_the_prompt(
    stub: Stub, workspace: Path, global_memory: Path
) -> None:
    provider = scripted(
        [tool_call("memory_write", "p", content="- build with `make build`")],
        [tool_call("memory_write", "g", content="- prefers short answers", scope="global")],
        [tool_call("memory_read", "r")],
        [{"text": "remembered"}],
    )
    session = await create_session(stub, workspace, provider)
    results = finished_calls(await run_turn(stub, session.id, "remember"))
    assert results["r"].output == "- build with `make build`\n"
    assert (workspace / ".kodad" / "MEMORY.md").read_text() == "- build with `make build`\n"
    assert global_memory.read_text() == "- prefers short answers\n"
    prompt = system_prompt(SessionRecord(id="s", workspace=str(workspace)), DEFAULT_PROFILE, [])
    assert "make build" in prompt and "prefers short answers" in prompt


async def test_recall_context_searches_the_history(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [{"text": "Noted."}],
        [tool_call("recall_context", "q", query="Pineapple")],
        [{"text": "found it"}],
    )
    session = await create_session(stub, workspace, provider)
    await run_turn(stub, session.id, "The secret word is pineapple.")
    result = finished_calls(await run_turn(stub, session.id, "what was the word?"))["q"]
    assert result.output == "#1 (user): The secret word is pineapple."
