"""The Anthropic provider against a local server speaking the Messages API stream format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from kodad.domain.events import RateLimit
from kodad.domain.model import Image, Message, Role, ToolCall, ToolResult, Usage
from kodad.providers import (
    AnthropicProvider,
    HttpClient,
    ProviderError,
    ProviderEvent,
    ProviderNotice,
    ProviderRequest,
    RateLimitReport,
    RetryPolicy,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ThinkingSignature,
    ToolCallReady,
    ToolSpec,
    UsageReport,
)
from kodad.providers.anthropic import to_anthropic_messages
from tests.fakes.llm_server import Failure, FakeLLM, Json, Raw, anthropic_stream, sse


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient(connect_timeout_s=2.0, read_timeout_s=2.0)
    yield c
    await c.aclose()


def provider(
    fake: FakeLLM, client: HttpClient, slept: list[float] | None = None, key_env: str = ""
) -> AnthropicProvider:
    async def sleep(seconds: float) -> None:
        if slept is not None:
            slept.append(seconds)

    return AnthropicProvider(
        base_url=fake.root_url, api_key_env=key_env, client=client, retry=RetryPolicy(), sleep=sleep
    )


def request(**kw: object) -> ProviderRequest:
    base: dict[str, object] = {
        "model": "claude-fake",
        "system_prompt": "be useful",
        "messages": [Message(Role.USER, "t", text="hi")],
        "tools": [ToolSpec("read_file", "Read a file", {"type": "object", "properties": {}})],
    }
    base.update(kw)
    return ProviderRequest(**base)  # type: ignore[arg-type]


async def collect(events: AsyncIterator[ProviderEvent]) -> list[ProviderEvent]:
    return [e async for e in events]


async def test_text_thinking_tool_use_and_usage(
    fake_llm: FakeLLM, client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", "sk-ant-test")
    fake_llm.replies.append(
        Raw(
            anthropic_stream(
                {"thinking": ["Let me ", "look."], "signature": "EqQBsig=="},
                {"text": ["I'll read ", "it."]},
                {"tool_use": ("toolu_01", "read_file", ['{"pa', 'th": "a.', 'txt"}'])},
                stop_reason="tool_use",
                usage={
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 1,
                },
                output_tokens=42,
            ),
            split=9,
        )
    )  # split every 9 bytes: lines and UTF-8 cut anywhere

    got = await collect(
        provider(fake_llm, client, key_env="ANTHROPIC_TEST_KEY").stream(
            request(thinking_budget_tokens=2048)
        )
    )

    assert got == [
        ThinkingChunk("Let me "),
        ThinkingChunk("look."),
        ThinkingSignature("EqQBsig=="),
        TextChunk("I'll read "),
        TextChunk("it."),
        ToolCallReady(ToolCall("toolu_01", "read_file", '{"path": "a.txt"}')),
        UsageReport(
            Usage(input_tokens=115, output_tokens=42, cache_read_tokens=100, cache_write_tokens=5)
        ),
        StreamFinished("tool_use"),
    ]
    sent = fake_llm.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == [
        {"type": "text", "text": "be useful", "cache_control": {"type": "ephemeral"}}
    ]
    assert sent.body["stream"] is True
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent.body["max_tokens"] > 2048
    assert sent.body["tools"] == [
        {
            "name": "read_file",
            "description": "Read a file",
            "input_schema": {"type": "object", "properties": {}},
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_history_in_messages_api_format() -> None:
    history = [
        Message(Role.USER, "t", text="look at this", images=(Image("image/png", b"\x89PNG"),)),
        Message(
            Role.ASSISTANT,
            "t",
            text="Reading.",
            thinking="hmm",
            thinking_signature="sig",
            tool_calls=(
                ToolCall("tu1", "read_file", '{"path":"a"}'),
                ToolCall("tu2", "bash", '{"command":"ls"}'),
            ),
        ),
        Message(Role.TOOL, "t", tool_result=ToolResult("tu1", "content")),
        Message(Role.TOOL, "t", tool_result=ToolResult("tu2", "", is_error=True)),
        Message(Role.ASSISTANT, "t", text="", thinking="unsigned thoughts"),  # nothing sendable
        Message(Role.USER, "t2", text="next"),
    ]
    assert to_anthropic_messages(history) == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
                },
                {"type": "text", "text": "look at this"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "tu1", "name": "read_file", "input": {"path": "a"}},
                {"type": "tool_use", "id": "tu2", "name": "bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "tu1",
                    "content": "content",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "tu2",
                    "content": "(no output)",
                    "is_error": True,
                },
                {"type": "text", "text": "next"},
            ],
        },
    ]


async def test_429_with_retry_after_then_overloaded_then_success(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    fake_llm.replies.extend(
        [
            Failure(
                429,
                {
                    "type": "error",
                    "error": {
                        "type": "rate_limit_error",
                        "message": "Number of request tokens has exceeded your rate limit",
                    },
                },
                {"retry-after": "3"},
            ),
            Failure(
                529,
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ),
            Raw(anthropic_stream({"text": ["ok"]})),
        ]
    )
    slept: list[float] = []
    got = await collect(provider(fake_llm, client, slept).stream(request()))
    assert slept[0] == 3.0 and len(slept) == 2
    notices = [e.text for e in got if isinstance(e, ProviderNotice)]
    assert "rate_limit_error: Number of request tokens" in notices[0]
    assert "overloaded_error: Overloaded" in notices[1]
    assert TextChunk("ok") in got


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
            "auth",
        ),
        (
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000 maximum",
                },
            },
            "context_too_long",
        ),
        (
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "messages: roles must alternate",
                },
            },
            "bad_request",
        ),
    ],
)
async def test_error_bodies_map_to_stable_codes(
    fake_llm: FakeLLM, client: HttpClient, status: int, body: dict[str, object], code: str
) -> None:
    fake_llm.replies.append(Failure(status, body))
    with pytest.raises(ProviderError) as err:
        await collect(provider(fake_llm, client, []).stream(request()))
    assert err.value.code == code
    assert body["error"]["message"] in err.value.message  # type: ignore[index]
    assert len(fake_llm.requests) == 1


async def test_error_event_inside_the_stream(fake_llm: FakeLLM, client: HttpClient) -> None:
    stream = anthropic_stream({"text": ["par", "tial"]})
    cut = stream.index(b"event: message_delta")
    fake_llm.replies.append(
        Raw(
            stream[:cut]
            + sse(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        )
    )
    got: list[ProviderEvent] = []
    with pytest.raises(ProviderError) as err:
        async for event in provider(fake_llm, client, []).stream(request()):
            got.append(event)
    assert err.value.code == "overloaded" and "Overloaded" in err.value.message
    assert got == [TextChunk("par"), TextChunk("tial")]
    assert len(fake_llm.requests) == 1  # never retried after the first token


@pytest.mark.parametrize(
    ("data", "end", "fragment", "code"),
    [
        (b"event: message_start\ndata: {not json}\n\n", "done", "is not JSON", "provider_error"),
        (
            anthropic_stream({"text": ["a"]}).split(b"event: message_stop")[0],
            "done",
            "ended before message_stop",
            "network",
        ),
        (
            anthropic_stream({"text": ["a"]}).split(b"event: message_delta")[0],
            "cut",
            "connection lost",
            "network",
        ),
        (
            anthropic_stream({"text": ["a"]}).split(b"event: message_delta")[0],
            "stall",
            "timed out waiting for data",
            "network",
        ),
    ],
)
async def test_malformed_cut_and_stalled_streams_fail_clearly(
    fake_llm: FakeLLM, data: bytes, end: str, fragment: str, code: str
) -> None:
    fake_llm.replies.append(Raw(data, end=end))
    short = HttpClient(connect_timeout_s=0.5, read_timeout_s=0.5)
    with pytest.raises(ProviderError) as err:
        await collect(provider(fake_llm, short, []).stream(request()))
    await short.aclose()
    assert fragment in err.value.message
    assert err.value.code == code


async def test_event_delta_and_block_types_added_later_are_ignored(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    stream = anthropic_stream({"text": ["kept"]})
    cut = stream.index(b"event: message_delta")
    extra = (
        sse("some_future_event", {"type": "some_future_event", "anything": [1, 2]})
        + sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "hologram"}},
        )
        + sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "hologram_delta"}},
        )
        + sse("content_block_stop", {"type": "content_block_stop", "index": 1})
        + sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "new_delta", "x": 1}},
        )
    )
    fake_llm.replies.append(Raw(stream[:cut] + extra + stream[cut:]))
    got = await collect(provider(fake_llm, client, []).stream(request()))
    assert got == [
        TextChunk("kept"),
        UsageReport(Usage(input_tokens=25, output_tokens=12)),
        StreamFinished("end_turn"),
    ]


async def test_tool_input_that_is_not_json_goes_to_the_tool_not_the_turn(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    fake_llm.replies.append(
        Raw(
            anthropic_stream(
                {"tool_use": ("t1", "bash", ['{"command": ls}'])}, stop_reason="tool_use"
            )
        )
    )
    got = await collect(provider(fake_llm, client, []).stream(request()))
    assert ToolCallReady(ToolCall("t1", "bash", '{"command": ls}')) in got
    assert got[-1] == StreamFinished("tool_use")


async def test_a_tool_call_cut_by_the_token_limit_is_marked_and_said(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    fake_llm.replies.append(
        Raw(
            anthropic_stream(
                {"text": ["Writing it."]},
                {"tool_use": ("t1", "write_file", ['{"path": "a", "content": "lo'])},
                stop_reason="max_tokens",
            )
        )
    )
    got = await collect(provider(fake_llm, client, []).stream(request()))
    cut = [e for e in got if isinstance(e, ToolCallReady)]
    assert cut == [
        ToolCallReady(ToolCall("t1", "write_file", '{"path": "a", "content": "lo'), True)
    ]
    notices = [e.text for e in got if isinstance(e, ProviderNotice)]
    assert notices == [
        "the model stopped at its output token limit, inside a call of write_file (not run)"
    ]


async def test_a_json_answer_to_a_stream_request_is_read_whole(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    fake_llm.replies.append(
        Json(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-fake",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "a"}},
                    {"type": "server_gadget", "whatever": True},
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 7, "output_tokens": 3},
            }
        )
    )
    got = await collect(provider(fake_llm, client, []).stream(request()))
    assert got == [
        ThinkingChunk("hm"),
        ThinkingSignature("sig"),
        TextChunk("Reading."),
        ToolCallReady(ToolCall("t1", "read_file", '{"path": "a"}')),
        UsageReport(Usage(input_tokens=7, output_tokens=3)),
        StreamFinished("tool_use"),
    ]


async def test_a_drop_after_the_answer_began_is_worded_so(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    start = anthropic_stream({"text": ["a"]}).split(b"event: content_block_start")[0]
    fake_llm.replies.extend([Raw(start, end="cut")] * 4)
    with pytest.raises(ProviderError) as err:
        await collect(provider(fake_llm, client, []).stream(request()))
    assert "connection lost mid-response" in err.value.message
    assert err.value.message.count(fake_llm.root_url) == 1


async def test_a_refused_connection_names_the_url_once(client: HttpClient) -> None:
    dead = AnthropicProvider(
        base_url="http://127.0.0.1:9", api_key_env="", client=client,
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip
    with pytest.raises(ProviderError) as err:
        await collect(dead.stream(request()))
    assert "connection failed" in err.value.message
    assert err.value.message.count("127.0.0.1:9") == 1


async def test_anthropic_rate_limit_headers_become_a_report(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-12-01T10:00:30Z",
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000",
        "anthropic-ratelimit-output-tokens-remaining": "7000",
    }
    fake_llm.replies.append(Raw(anthropic_stream({"text": ["a"]}), headers=headers))
    got = await collect(provider(fake_llm, client, []).stream(request()))
    assert got[0] == RateLimitReport(
        (
            RateLimit("requests", 50, 49, "2026-12-01T10:00:30Z"),
            RateLimit("input_tokens", 40000, 39000, ""),
            RateLimit("output_tokens", 0, 7000, ""),
        )
    )


async def test_prompt_caching_marks_the_prefix_the_next_round_repeats(
    fake_llm: FakeLLM, client: HttpClient
) -> None:
    fake_llm.replies.extend([Raw(anthropic_stream({"text": ["a"]}))] * 3)
    first = request()
    call = ToolCall("t1", "read_file", '{"path": "a"}')
    second = request(
        messages=[
            *first.messages,
            Message(Role.ASSISTANT, "t", text="reading", tool_calls=(call,)),
            Message(Role.TOOL, "t", tool_result=ToolResult("t1", "content of a")),
        ]
    )
    await collect(provider(fake_llm, client, []).stream(first))
    await collect(provider(fake_llm, client, []).stream(second))
    one, two = fake_llm.requests[0].body, fake_llm.requests[1].body

    def marked(body: dict[str, object]) -> list[object]:
        blocks = [b for m in body["messages"] for b in m["content"]]  # type: ignore[attr-defined]
        return [b for b in blocks if "cache_control" in b]

    assert one["system"] == two["system"] and "cache_control" in one["system"][0]
    assert one["tools"] == two["tools"] and "cache_control" in one["tools"][-1]
    # What ended the first request is marked again in the second, and so is its new end.
    assert marked(one) == [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]
    assert marked(one)[0] in marked(two)
    assert marked(two)[-1]["type"] == "tool_result"  # type: ignore[index]
    assert len(marked(two)) + 2 <= 4  # the API's limit of breakpoints

    off = AnthropicProvider(
        base_url=fake_llm.root_url, api_key_env="", client=client, prompt_caching=False
    )
    await collect(off.stream(second))
    assert "cache_control" not in json.dumps(fake_llm.requests[2].body)
