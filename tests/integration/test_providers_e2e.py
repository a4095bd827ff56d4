"""A turn with thinking and tool calls through RunTurn on each real provider, against a
local server speaking its wire format; and provider failures ending turns cleanly."""

from __future__ import annotations

import dataclasses
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
from tests.fakes.llm_server import (
    Failure,
    FakeLLM,
    Raw,
    Stream,
    anthropic_stream,
    text_chunks,
    tool_call_chunks,
    usage_chunk,
)
from tests.helpers import (
    assert_history_valid,
    create_session,
    kind,
    kinds,
    messages,
    run_turn,
    text_of,
)

Stub = pb_grpc.SessionServiceStub


async def test_anthropic_turn_with_thinking_and_tools(
    stub: Stub, workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-xyz")
    fake_llm.replies.extend(
        [
            Raw(
                anthropic_stream(
                    {"thinking": ["The user wants ", "a file."], "signature": "sig-round-1"},
                    {"text": ["Creating it."]},
                    {
                        "tool_use": (
                            "toolu_9",
                            "write_file",
                            ['{"path": "notes.md", ', '"content": "# Notes\\n"}'],
                        )
                    },
                    stop_reason="tool_use",
                ),
                split=13,
            ),
            Raw(anthropic_stream({"text": ["Done: ", "notes.md"]})),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_ANTHROPIC,
        model="claude-fake",
        base_url=fake_llm.root_url,
        api_key_env="FAKE_ANTHROPIC_KEY",
        thinking_budget_tokens=4096,
    )
    session = await create_session(stub, workspace, provider)

    events = await run_turn(stub, session.id, "write notes.md")

    assert kinds(events)[:4] == ["turn_started", "thinking_delta", "thinking_delta", "text_delta"]
    assert (
        "".join(e.thinking_delta.text for e in events if kind(e) == "thinking_delta")
        == "The user wants a file."
    )
    assert text_of(events) == "Creating it.Done: notes.md"
    assert (workspace / "notes.md").read_text() == "# Notes\n"
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    assert events[-1].turn_ended.usage.output_tokens == 24

    history = await messages(stub, session.id)
    assert_history_valid(history)
    assert history[1].thinking == "The user wants a file."
    second = fake_llm.requests[1].body
    assert second["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants a file.",
        "signature": "sig-round-1",
    }
    assert second["messages"][2]["content"][0]["type"] == "tool_result"
    assert second["messages"][2]["content"][0]["tool_use_id"] == "toolu_9"
    assert fake_llm.requests[0].headers["x-api-key"] == "sk-ant-xyz"


async def test_openai_turn_with_reasoning_and_parallel_tools(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    first = tool_call_chunks(
        [
            ("c1", "write_file", json.dumps({"path": "a.txt", "content": "A"})),
            ("c2", "write_file", json.dumps({"path": "b.txt", "content": "B"})),
        ],
        split=4,
    )
    first.insert(1, {"choices": [{"index": 0, "delta": {"reasoning_content": "two files"}}]})
    fake_llm.replies.extend(
        [
            Stream([*first, usage_chunk(50, 20)]),
            Stream([*text_chunks("Both written."), usage_chunk(90, 4)]),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="qwen", base_url=fake_llm.base_url
    )
    session = await create_session(stub, workspace, provider)

    events = await run_turn(stub, session.id, "write a and b")

    assert [e.thinking_delta.text for e in events if kind(e) == "thinking_delta"] == ["two files"]
    assert (workspace / "a.txt").read_text() == "A" and (workspace / "b.txt").read_text() == "B"
    assert [e.tool_call_started.call_id for e in events if kind(e) == "tool_call_started"] == [
        "c1",
        "c2",
    ]
    assert events[-1].turn_ended.usage.input_tokens == 140
    assert_history_valid(await messages(stub, session.id))


async def test_a_stalled_stream_fails_the_turn(
    server_config: ServerConfig, workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.replies.append(
        Raw(
            b'data: {"choices": [{"index": 0, "delta": {"content": "thinking..."}}]}\n\n',
            end="stall",
        )
    )
    config = dataclasses.replace(server_config, provider_read_timeout_s=0.5)
    async with Server(config) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        provider = spb.ProviderConfig(
            kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url
        )
        session = await create_session(stub, workspace, provider)
        events = await run_turn(stub, session.id, "hi")
        ended = events[-1].turn_ended
        assert (ended.reason, ended.error_code) == (epb.TURN_END_REASON_FAILED, "network")
        assert "timed out waiting for data" in ended.error_message
        history = await messages(stub, session.id)
        assert history[-1].text == "thinking..."  # the partial answer is kept


async def test_default_provider_comes_from_the_environment(
    server_config: ServerConfig, workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kodad.config import provider_from_env
    from kodad.gen.koda.v1 import session_service_pb2 as pb

    env = {
        "KODAD_BASE_URL": fake_llm.base_url,
        "KODAD_MODEL": "local-coder",
        "OPENAI_API_KEY": "sk-env",
    }
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    engine = dataclasses.replace(server_config.engine, default_provider=provider_from_env(env))
    fake_llm.replies.append(Stream(text_chunks("from env")))
    async with (
        Server(dataclasses.replace(server_config, engine=engine)) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        stub = pb_grpc.SessionServiceStub(ch)
        info = await stub.GetServerInfo(pb.GetServerInfoRequest())
        assert (info.default_provider.kind, info.default_provider.model) == (
            spb.PROVIDER_KIND_OPENAI_COMPATIBLE,
            "local-coder",
        )
        assert info.default_provider.api_key_env == "OPENAI_API_KEY"
        assert spb.PROVIDER_KIND_ANTHROPIC in info.provider_kinds
        session = await create_session(stub, workspace)  # no provider: the default
        assert session.provider == info.default_provider
        assert text_of(await run_turn(stub, session.id, "hi")) == "from env"
        assert fake_llm.requests[0].headers["authorization"] == "Bearer sk-env"
        assert "sk-env" not in str(info) and "sk-env" not in str(session)


async def test_bad_tool_input_and_a_call_cut_by_the_limit_are_tool_errors_the_turn_survives(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.replies.extend(
        [
            Raw(
                anthropic_stream(
                    {"tool_use": ("t1", "bash", ['{"command": ls}'])}, stop_reason="tool_use"
                )
            ),
            Raw(
                anthropic_stream(
                    {"tool_use": ("t2", "write_file", ['{"path": "big.txt", "content": "aaa'])},
                    stop_reason="max_tokens",
                )
            ),
            Raw(anthropic_stream({"text": ["Recovered."]})),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_ANTHROPIC,
        model="claude-fake",
        base_url=fake_llm.root_url,
        max_output_tokens=300,
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "go")
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    finished = {
        e.tool_call_finished.call_id: e.tool_call_finished
        for e in events
        if kind(e) == "tool_call_finished"
    }
    assert finished["t1"].is_error and "not valid JSON" in finished["t1"].output
    assert finished["t2"].is_error and "output token limit (300 tokens)" in finished["t2"].output
    assert not (workspace / "big.txt").exists()
    notices = [e.notice.text for e in events if kind(e) == "notice"]
    assert any("inside a call of write_file" in n for n in notices)
    assert text_of(events) == "Recovered."
    assert_history_valid(await messages(stub, session.id))


async def test_retries_and_rate_limits_reach_the_client_as_data(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.replies.extend(
        [
            Failure(429, {"error": {"message": "slow down"}}, {"retry-after": "0"}),
            Stream(
                text_chunks("fine"),
                headers={"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "9"},
            ),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url
    )
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "hi")
    retry = next(e.notice.retry for e in events if kind(e) == "notice")
    assert (retry.attempt, retry.max_attempts, retry.reason) == (2, 4, "rate_limited")
    assert retry.delay.ToMilliseconds() == 0
    limits = next(e.rate_limits for e in events if kind(e) == "rate_limits")
    assert [(r.name, r.limit, r.remaining) for r in limits.limits] == [("tokens", 1000, 9)]
    assert text_of(events) == "fine"


async def test_list_models_of_the_default_scripted_provider(stub: Stub) -> None:
    response = await stub.ListModels(pb.ListModelsRequest())
    assert [m.id for m in response.models] == ["scripted"]


async def test_list_models_reads_limits_and_a_session_uses_the_window(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.model_pages = [
        {
            "object": "list",
            "data": [
                {"id": "small", "object": "model", "max_model_len": 32768},
                {
                    "id": "big",
                    "name": "Big Model",
                    "context_length": 200000,
                    "top_provider": {"max_completion_tokens": 8000},
                },
                {"id": "plain", "object": "model", "owned_by": "someone"},
            ],
        }
    ]
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="small", base_url=fake_llm.base_url
    )
    response = await stub.ListModels(pb.ListModelsRequest(provider=provider))
    assert [(m.id, m.display_name, m.context_window_tokens, m.max_output_tokens)
            for m in response.models] == [
        ("small", "", 32768, 0), ("big", "Big Model", 200000, 8000), ("plain", "", 0, 0)
    ]  # fmt: skip
    await stub.ListModels(pb.ListModelsRequest(provider=provider))
    assert len(fake_llm.model_requests) == 1  # cached

    fake_llm.replies.append(Stream(text_chunks("hi")))
    session = await create_session(stub, workspace, provider)
    events = await run_turn(stub, session.id, "hello")
    usage = next(e.context_usage for e in events if kind(e) == "context_usage")
    assert usage.max_tokens == 32768  # the model's window, the session set none
    by_session = await stub.ListModels(pb.ListModelsRequest(session_id=session.id))
    assert [m.id for m in by_session.models] == ["small", "big", "plain"]


async def test_list_models_of_anthropic_follows_every_page(stub: Stub, fake_llm: FakeLLM) -> None:
    fake_llm.model_pages = [
        {
            "data": [{"type": "model", "id": "claude-a", "display_name": "Claude A"}],
            "has_more": True,
            "first_id": "claude-a",
            "last_id": "claude-a",
        },
        {
            "data": [
                {
                    "type": "model",
                    "id": "claude-b",
                    "display_name": "Claude B",
                    "max_input_tokens": 200000,
                    "max_tokens": 64000,
                }
            ],
            "has_more": False,
            "last_id": "claude-b",
        },
    ]
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_ANTHROPIC, model="claude-a", base_url=fake_llm.root_url
    )
    response = await stub.ListModels(pb.ListModelsRequest(provider=provider))
    assert [(m.id, m.context_window_tokens, m.max_output_tokens) for m in response.models] == [
        ("claude-a", 0, 0),
        ("claude-b", 200000, 64000),
    ]
    assert "after_id=claude-a" in fake_llm.model_requests[1]


async def test_list_models_errors_are_statuses(stub: Stub, fake_llm: FakeLLM) -> None:
    unlent = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        model="m",
        base_url=fake_llm.base_url,
        api_key_env="OPENAI_API_KEY",
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ListModels(pb.ListModelsRequest(provider=unlent))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    dead = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url="http://127.0.0.1:9/v1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ListModels(pb.ListModelsRequest(provider=dead))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "connection failed" in (e.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ListModels(pb.ListModelsRequest(session_id="s_nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
