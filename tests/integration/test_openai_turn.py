"""A turn against a local OpenAI-compatible SSE server, then a restart and a replay."""

from __future__ import annotations

import json
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
from tests.fakes.llm_server import (
    Failure,
    FakeLLM,
    Stream,
    text_chunks,
    tool_call_chunks,
    usage_chunk,
)
from tests.helpers import (
    assert_history_valid,
    create_session,
    kind,
    messages,
    run_turn,
    streamed_kinds,
    text_of,
)


def openai(fake: FakeLLM, **fields: str) -> spb.ProviderConfig:
    return spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        model="fake-coder",
        base_url=fake.base_url,
        **fields,
    )


async def test_model_writes_a_file_then_replay_survives_restart(
    server_config: ServerConfig,
    workspace: Path,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-123")
    arguments = json.dumps({"path": "hello.py", "content": "print('héllo')\n"})
    fake_llm.replies.extend(
        [
            Stream(
                [
                    *tool_call_chunks(
                        [("call_abc", "write_file", arguments)], split=5, text="I'll write it."
                    ),
                    usage_chunk(120, 30),
                ]
            ),
            Stream([*text_chunks("Wrote ", "hello.py", "."), usage_chunk(160, 5, cached=100)]),
        ]
    )

    async with Server(server_config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = await create_session(
            stub, workspace, openai(fake_llm, api_key_env="FAKE_OPENAI_KEY")
        )
        events = await run_turn(stub, session.id, "write hello.py")
        history = await messages(stub, session.id)

    assert (workspace / "hello.py").read_text() == "print('héllo')\n"
    assert streamed_kinds(events) == [
        "turn_started",
        "text_delta",
        "usage",
        "tool_call_started",
        "checkpoint_taken",
        "file_changed",
        "checkpoint_taken",
        "tool_call_finished",
        "text_delta",
        "usage",
        "turn_diff",
        "turn_ended",
    ]
    assert text_of(events) == "I'll write it.Wrote hello.py."
    started = next(e.tool_call_started for e in events if e.HasField("tool_call_started"))
    assert (started.call_id, started.tool_name, started.arguments_json) == (
        "call_abc",
        "write_file",
        arguments,
    )
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_COMPLETED
    assert (ended.usage.input_tokens, ended.usage.output_tokens, ended.usage.cache_read_tokens) == (
        280,
        35,
        100,
    )
    assert_history_valid(history)

    first, second = fake_llm.requests
    assert first.headers["authorization"] == "Bearer sk-test-123"
    assert first.body["model"] == "fake-coder" and first.body["stream"] is True
    assert first.body["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in first.body["tools"]][:2] == ["read_file", "write_file"]
    assert [m["role"] for m in first.body["messages"]] == ["system", "user"]
    assert [m["role"] for m in second.body["messages"]] == ["system", "user", "assistant", "tool"]
    assert second.body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "write_file",
        "arguments": arguments,
    }
    assert second.body["messages"][3]["tool_call_id"] == "call_abc"

    async with (
        Server(restarted(server_config)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session.id))
        replayed = [(await watch.read()).event for _ in events]
        watch.cancel()
        assert replayed == events
        assert await messages(stub, session.id) == history
        got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
        assert got.last_seq == events[-1].seq
        assert got.usage.input_tokens == 280


async def test_provider_error_body_reaches_turn_ended(
    stub: pb_grpc.SessionServiceStub, workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.replies.append(
        Failure(
            401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
        )
    )
    session = await create_session(stub, workspace, openai(fake_llm))
    events = await run_turn(stub, session.id, "hi")
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_FAILED
    assert ended.error_code == "auth"
    assert "Incorrect API key provided" in ended.error_message
    assert "401" in ended.error_message


async def test_missing_key_variable_fails_the_turn(
    stub: pb_grpc.SessionServiceStub,
    workspace: Path,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KODAD_TEST_UNSET_KEY", raising=False)
    session = await create_session(
        stub, workspace, openai(fake_llm, api_key_env="KODAD_TEST_UNSET_KEY")
    )
    events = await run_turn(stub, session.id, "hi")
    ended = events[-1].turn_ended
    assert (ended.reason, ended.error_code) == (epb.TURN_END_REASON_FAILED, "auth")
    assert "KODAD_TEST_UNSET_KEY" in ended.error_message
    assert fake_llm.requests == []


async def test_unreachable_provider_fails_after_retries(
    stub: pb_grpc.SessionServiceStub, workspace: Path
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=f"http://127.0.0.1:{port}/v1"
    )
    session = await create_session(stub, workspace, config)
    events = await run_turn(stub, session.id, "hi")
    notices = [e.notice.text for e in events if kind(e) == "notice"]
    assert len(notices) == 3 and all("retrying" in n for n in notices)
    assert events[-1].turn_ended.error_code == "network"
