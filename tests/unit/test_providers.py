"""Providers: SSE framing, the scripted player, and the OpenAI-compatible client against a
local server speaking the real streaming format."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections.abc import AsyncIterator

import pytest

from kodad.domain.events import RateLimit
from kodad.domain.model import Image, Message, Role, ToolCall, ToolResult, Usage
from kodad.providers import (
    HttpClient,
    OpenAICompatProvider,
    ProviderError,
    ProviderEvent,
    ProviderNotice,
    ProviderRequest,
    RateLimitReport,
    Retry,
    ScriptedProvider,
    ScriptError,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ToolCallReady,
    ToolSpec,
    UsageReport,
    parse_script,
)
from kodad.providers.http import RetryPolicy
from kodad.providers.openai_compat import to_openai_messages
from kodad.providers.sse import ServerSentEvent, iter_sse, iter_sse_batches
from kodad.providers.transport import PACE_AFTER_LAG_S, PACE_MAX_S, LoopLag
from tests.fakes.llm_server import (
    Failure,
    FakeLLM,
    Json,
    Raw,
    Stream,
    text_chunks,
    tool_call_chunks,
    usage_chunk,
)


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def collect(events: AsyncIterator[ProviderEvent]) -> list[ProviderEvent]:
    return [e async for e in events]


def adjacent_merged(events: list[ProviderEvent]) -> list[ProviderEvent]:
    """The events with adjacent text (or thinking) chunks joined, as a provider may send them."""
    out: list[ProviderEvent] = []
    for e in events:
        if out and isinstance(e, TextChunk | ThinkingChunk) and type(out[-1]) is type(e):
            out[-1] = type(e)(out[-1].text + e.text)  # type: ignore[union-attr]
        else:
            out.append(e)
    return out


def request(*messages: Message) -> ProviderRequest:
    return ProviderRequest(
        model="m",
        system_prompt="sys",
        messages=list(messages) or [Message(Role.USER, "t", text="hi")],
    )


class TestSse:
    async def test_events_data_lines_and_comments(self) -> None:
        stream = (
            ': keep-alive\r\nevent: message_start\ndata: {"a":\ndata: 1}\n\n'
            "data:no-space\n\nretry: 10\n\ndata: tail"
        )
        for cuts in ([], [5, 17, 20, 40], list(range(1, len(stream)))):  # any read boundaries
            bounds = [0, *cuts, len(stream)]
            reads = [stream[a:b] for a, b in itertools.pairwise(bounds)]
            got = [e async for e in iter_sse(lines(*reads))]
            assert got == [
                ServerSentEvent("message_start", '{"a":\n1}'),
                ServerSentEvent("message", "no-space"),
                ServerSentEvent("message", "tail"),
            ], cuts

    async def test_a_read_brings_its_events_as_one_batch(self) -> None:
        reads = ["data: a\n\ndata: b\n\nda", "ta: c\r", "\n\r\n", "data: d\n\n"]
        batches = [[e.data for e in b] async for b in iter_sse_batches(lines(*reads))]
        assert batches == [["a", "b"], ["c"], ["d"]]


class TestScripted:
    async def test_round_follows_the_sessions_prior_rounds(self) -> None:
        provider = ScriptedProvider(
            json.dumps({"rounds": [[{"text": "first"}], [{"thinking": "hmm"}, {"text": "second"}]]})
        )
        one = await collect(provider.stream(request()))
        assert one == [TextChunk("first"), StreamFinished("end_turn")]
        history = [
            Message(Role.USER, "t", text="a"),
            Message(Role.ASSISTANT, "t", text="first"),
            Message(Role.USER, "t", text="b"),
        ]
        two = await collect(provider.stream(ProviderRequest("m", "sys", history, prior_rounds=1)))
        assert two == [ThinkingChunk("hmm"), TextChunk("second"), StreamFinished("end_turn")]

    async def test_tool_calls_usage_repeat_and_errors(self) -> None:
        provider = ScriptedProvider(
            json.dumps(
                {
                    "rounds": [
                        [
                            {"repeat": 3, "text": "x"},
                            {"tool_call": {"name": "bash", "arguments": {"command": "ls"}}},
                            {
                                "tool_call": {
                                    "name": "bash",
                                    "arguments": '{"command":"pwd"}',
                                    "id": "mine",
                                }
                            },
                            {"usage": {"input_tokens": 3, "output_tokens": 4}},
                            {"error": {"code": "rate_limited", "message": "slow down"}},
                        ]
                    ]
                }
            )
        )
        got: list[ProviderEvent] = []
        with pytest.raises(ProviderError) as err:
            async for event in provider.stream(request()):
                got.append(event)
        assert (err.value.code, err.value.message) == ("rate_limited", "slow down")
        assert got == [
            TextChunk("x"),
            TextChunk("x"),
            TextChunk("x"),
            ToolCallReady(ToolCall("call_1_2", "bash", '{"command": "ls"}')),
            ToolCallReady(ToolCall("mine", "bash", '{"command":"pwd"}')),
            UsageReport(Usage(3, 4)),
        ]

    async def test_delays_are_a_schedule_and_what_came_due_on_a_busy_loop_is_one_chunk(
        self,
    ) -> None:
        """A model streams on its own clock: a loop that ran late gets what came due
        meanwhile at once, merged as one network read would bring it."""
        steps: list[dict[str, object]] = [{"text": "a"}]
        for word in "bcd":
            steps += [{"delay_ms": 20}, {"text": word}]
        steps += [{"delay_ms": 400}, {"text": "e"}, {"thinking": "f"}]
        provider = ScriptedProvider(json.dumps({"rounds": [steps, steps]}))
        loop = asyncio.get_running_loop()

        async def play(prior: int, stall_s: float) -> list[tuple[ProviderEvent, float]]:
            began, got = loop.time(), []
            stream = provider.stream(ProviderRequest("m", "", [], prior_rounds=prior))
            async for event in stream:
                got.append((event, loop.time() - began))
                if len(got) == 1:
                    time.sleep(stall_s)  # noqa: ASYNC251  # the loop is busy: a stall, not a wait
            return got

        kept_up = await play(0, 0)
        assert [e for e, _ in kept_up] == [
            *map(TextChunk, "abcde"), ThinkingChunk("f"), StreamFinished("end_turn"),
        ]  # fmt: skip
        times = [t for _, t in kept_up]
        assert all(
            t >= due - 0.001 for t, due in zip(times[:5], (0, 0.02, 0.04, 0.06, 0.46), strict=True)
        )
        stalled = await play(1, 0.15)
        assert [e for e, _ in stalled] == [
            TextChunk("a"), TextChunk("bcd"), TextChunk("e"), ThinkingChunk("f"),
            StreamFinished("end_turn"),
        ]  # fmt: skip
        assert stalled[2][1] >= 0.46 - 0.001  # "e" is due 460 ms after the start

    async def test_exhausted_script(self) -> None:
        provider = ScriptedProvider('{"rounds": []}')
        with pytest.raises(ProviderError, match="round 1 was asked for") as err:
            await collect(provider.stream(request()))
        assert err.value.code == "script_exhausted"

    async def test_echo_without_script(self) -> None:
        got = await collect(
            ScriptedProvider("").stream(request(Message(Role.USER, "t", text="a b")))
        )
        assert "".join(e.text for e in got if isinstance(e, TextChunk)) == "You said: a b"

    @pytest.mark.parametrize(
        ("script", "fragment"),
        [
            ("[]", '"rounds" list'),
            ('{"rounds": [1]}', "round 0 must be a list"),
            ('{"rounds": [[{"usage": {"bogus": 1}}]]}', '"usage" keys'),
            ('{"rounds": [[{"delay_ms": -1}]]}', "non-negative"),
            ('{"rounds": [[{"tool_call": {}}]]}', 'needs a "name"'),
        ],
    )
    def test_bad_scripts(self, script: str, fragment: str) -> None:
        with pytest.raises(ScriptError, match=fragment):
            parse_script(script)


def test_history_in_openai_format() -> None:
    history = [
        Message(Role.USER, "t", text="look", images=(Image("image/png", b"\x89PNG"),)),
        Message(
            Role.ASSISTANT, "t", text="", tool_calls=(ToolCall("c1", "read_file", '{"path":"a"}'),)
        ),
        Message(Role.TOOL, "t", tool_result=ToolResult("c1", "content")),
    ]
    out = to_openai_messages(ProviderRequest("m", "sys", history))
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[1]["content"][0] == {"type": "text", "text": "look"}
    assert out[1]["content"][1]["image_url"]["url"] == "data:image/png;base64,iVBORw=="
    assert out[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path":"a"}'},
            }
        ],
    }
    assert out[3] == {"role": "tool", "tool_call_id": "c1", "content": "content"}


class TestOpenAICompat:
    @pytest.fixture
    async def client(self) -> AsyncIterator[HttpClient]:
        c = HttpClient()
        yield c
        await c.aclose()

    def provider(
        self,
        fake: FakeLLM,
        client: HttpClient,
        slept: list[float] | None = None,
        key_env: str = "",
    ) -> OpenAICompatProvider:
        async def sleep(seconds: float) -> None:
            if slept is not None:
                slept.append(seconds)

        return OpenAICompatProvider(
            base_url=fake.base_url, api_key_env=key_env, client=client, sleep=sleep
        )

    async def test_text_reasoning_and_usage(self, fake_llm: FakeLLM, client: HttpClient) -> None:
        chunks = text_chunks("Hel", "lo")
        chunks.insert(1, {"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]})
        fake_llm.replies.append(Stream([*chunks, usage_chunk(10, 2, cached=4)]))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert adjacent_merged(got) == [  # deltas one read brings may come as one
            ThinkingChunk("think"),
            TextChunk("Hello"),
            UsageReport(Usage(10, 2, 4)),
            StreamFinished("stop"),
        ]

    async def test_deltas_that_arrive_together_are_one_chunk(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        together = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in text_chunks(*"abcd"))
        fake_llm.replies.append(Raw(together + b"data: [DONE]\n\n"))  # one write
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert [e for e in got if isinstance(e, TextChunk)] == [TextChunk("abcd")]

    async def test_parallel_tool_calls_split_anywhere(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        a = json.dumps({"path": "a.txt", "content": "ünïcode " * 5})
        b = json.dumps({"command": "ls -la"})
        fake_llm.replies.append(
            Stream(tool_call_chunks([("id_a", "write_file", a), ("id_b", "bash", b)], split=3))
        )
        got = await collect(self.provider(fake_llm, client).stream(request()))
        calls = [e.call for e in got if isinstance(e, ToolCallReady)]
        assert calls == [ToolCall("id_a", "write_file", a), ToolCall("id_b", "bash", b)]
        assert got[-1] == StreamFinished("tool_calls")

    async def test_length_finish_is_a_notice(self, fake_llm: FakeLLM, client: HttpClient) -> None:
        chunks = text_chunks("cut")
        chunks[-1]["choices"][0]["finish_reason"] = "length"
        fake_llm.replies.append(Stream(chunks))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert any(isinstance(e, ProviderNotice) and "output token limit" in e.text for e in got)

    async def test_429_is_retried_honouring_retry_after(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.extend(
            [
                Failure(
                    429,
                    {"error": {"message": "Rate limit reached", "type": "requests"}},
                    {"retry-after": "7"},
                ),
                Failure(503, {"error": {"message": "overloaded"}}),
                Stream(text_chunks("ok")),
            ]
        )
        slept: list[float] = []
        got = await collect(self.provider(fake_llm, client, slept).stream(request()))
        assert slept[0] == 7.0
        assert 0.5 <= slept[1] <= 1.0  # backoff with jitter for the second attempt
        notices = [e for e in got if isinstance(e, ProviderNotice)]
        assert len(notices) == 2 and "Rate limit reached" in notices[0].text
        assert notices[0].retry == Retry(2, 4, 7.0, "rate_limited")
        assert notices[1].retry is not None and notices[1].retry.reason == "overloaded"
        assert notices[1].retry.attempt == 3 and notices[1].retry.delay_s == slept[1]
        assert TextChunk("ok") in got
        assert len(fake_llm.requests) == 3

    async def test_rate_limit_headers_become_a_report(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        headers = {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "2s",
        }
        fake_llm.replies.append(Stream(text_chunks("ok"), headers=headers))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert got[0] == RateLimitReport(
            (RateLimit("requests", 500, 499, "120ms"), RateLimit("tokens", 30000, 29000, "2s"))
        )
        fake_llm.replies.append(Stream(text_chunks("ok")))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert not any(isinstance(e, RateLimitReport) for e in got)  # none stated, none sent

    async def test_retries_give_up_with_the_provider_message(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        for _ in range(RetryPolicy().attempts):
            fake_llm.replies.append(
                Failure(500, {"error": {"message": "boom", "type": "server_error"}})
            )
        with pytest.raises(ProviderError) as err:
            await collect(self.provider(fake_llm, client, []).stream(request()))
        assert err.value.code == "provider_error"
        assert "server_error: boom" in err.value.message
        assert len(fake_llm.requests) == RetryPolicy().attempts

    @pytest.mark.parametrize(
        ("status", "code"), [(400, "bad_request"), (401, "auth"), (404, "bad_request")]
    )
    async def test_client_errors_are_not_retried(
        self, fake_llm: FakeLLM, client: HttpClient, status: int, code: str
    ) -> None:
        fake_llm.replies.append(Failure(status, {"error": {"message": "nope"}}))
        with pytest.raises(ProviderError) as err:
            await collect(self.provider(fake_llm, client, []).stream(request()))
        assert err.value.code == code and err.value.status == status
        assert len(fake_llm.requests) == 1

    async def test_error_inside_the_stream_is_not_retried(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.append(
            Stream([*text_chunks("par")[:2], {"error": {"message": "model crashed"}}], done=False)
        )
        got: list[ProviderEvent] = []
        with pytest.raises(ProviderError, match="model crashed"):
            async for event in self.provider(fake_llm, client, []).stream(request()):
                got.append(event)
        assert got == [TextChunk("par")]
        assert len(fake_llm.requests) == 1

    async def test_api_key_comes_from_the_named_variable(
        self, fake_llm: FakeLLM, client: HttpClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MY_KEY", "sk-abc")
        fake_llm.replies.append(Stream(text_chunks("ok")))
        await collect(self.provider(fake_llm, client, key_env="MY_KEY").stream(request()))
        assert fake_llm.requests[0].headers["authorization"] == "Bearer sk-abc"


class TestOpenAIHardening:
    @pytest.fixture
    async def client(self) -> AsyncIterator[HttpClient]:
        c = HttpClient(connect_timeout_s=0.5, read_timeout_s=0.5)
        yield c
        await c.aclose()

    def provider(self, fake: FakeLLM, client: HttpClient) -> OpenAICompatProvider:
        async def sleep(seconds: float) -> None:
            return None

        return OpenAICompatProvider(
            base_url=fake.base_url, api_key_env="", client=client, sleep=sleep
        )

    async def test_retries_once_without_stream_options(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.extend(
            [
                Failure(
                    400,
                    {
                        "error": {
                            "message": "Unrecognized request argument supplied: stream_options"
                        }
                    },
                ),
                Stream(text_chunks("fine")),
            ]
        )
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert "stream_options" in fake_llm.requests[0].body
        assert "stream_options" not in fake_llm.requests[1].body
        assert any(
            isinstance(e, ProviderNotice) and "does not accept stream_options" in e.text
            for e in got
        )
        assert TextChunk("fine") in got

    async def test_retries_once_without_tools(self, fake_llm: FakeLLM, client: HttpClient) -> None:
        tools_request = ProviderRequest(
            "m",
            "s",
            [Message(Role.USER, "t", text="hi")],
            [ToolSpec("bash", "run", {"type": "object"})],
        )
        fake_llm.replies.extend(
            [
                Failure(
                    400,
                    {
                        "error": {
                            "message": "registry.ollama.ai/library/gemma does not support tools"
                        }
                    },
                ),
                Failure(400, {"error": {"message": "still does not support tools"}}),
            ]
        )
        with pytest.raises(ProviderError, match="still does not support tools"):
            await collect(self.provider(fake_llm, client).stream(tools_request))
        assert "tools" in fake_llm.requests[0].body and "tools" not in fake_llm.requests[1].body
        assert len(fake_llm.requests) == 2  # once, not forever

    async def test_an_error_that_only_mentions_tools_is_not_taken_for_unsupported_tools(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        message = (
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
            "message with 'tool_calls'."
        )
        body = {"error": {"message": message, "type": "invalid_request_error", "param": "messages"}}
        fake_llm.replies.append(Failure(400, body))
        tools_request = ProviderRequest(
            "m", "s", [Message(Role.USER, "t", text="hi")], [ToolSpec("bash", "run", {})]
        )
        with pytest.raises(ProviderError) as err:
            await collect(self.provider(fake_llm, client).stream(tools_request))
        assert err.value.code == "bad_request" and message in err.value.message
        assert len(fake_llm.requests) == 1 and "tools" in fake_llm.requests[0].body

    async def test_max_tokens_field_follows_what_the_server_accepts(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        openai_error = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead."
        )
        body = {"error": {"message": openai_error, "type": "invalid_request_error"}}
        fake_llm.replies.extend(
            [Failure(400, body), Stream(text_chunks("a")), Stream(text_chunks("b"))]
        )
        provider = self.provider(fake_llm, client)
        limited = dataclasses.replace(request(), max_output_tokens=100)
        got = await collect(provider.stream(limited))
        assert TextChunk("a") in got
        first, second = fake_llm.requests[0].body, fake_llm.requests[1].body
        assert first["max_tokens"] == 100 and "max_completion_tokens" not in first
        assert second["max_completion_tokens"] == 100 and "max_tokens" not in second
        await collect(provider.stream(limited))  # learnt: no second refusal
        assert fake_llm.requests[2].body["max_completion_tokens"] == 100
        assert len(fake_llm.requests) == 3

    async def test_max_tokens_field_is_configurable(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.append(Stream(text_chunks("a")))
        provider = OpenAICompatProvider(
            base_url=fake_llm.base_url,
            api_key_env="",
            client=client,
            max_tokens_field="max_completion_tokens",
        )
        await collect(provider.stream(dataclasses.replace(request(), max_output_tokens=7)))
        assert fake_llm.requests[0].body["max_completion_tokens"] == 7

    async def test_unknown_chunk_fields_are_ignored(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        chunks = text_chunks("x")
        chunks[1]["system_fingerprint"] = "fp_1"
        chunks[1]["service_tier"] = "default"
        chunks[1]["choices"][0]["logprobs"] = {"content": []}
        chunks[1]["choices"][0]["delta"]["refusal"] = None
        chunks[1]["choices"][0]["delta"]["annotations"] = [{"type": "url_citation"}]
        fake_llm.replies.append(Stream(chunks))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert TextChunk("x") in got and got[-1] == StreamFinished("stop")

    async def test_a_tool_call_cut_by_the_token_limit_is_marked_and_said(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        chunks = tool_call_chunks([("c1", "write_file", '{"path": "a", "content": "lo')])
        chunks[-1]["choices"][0]["finish_reason"] = "length"
        fake_llm.replies.append(Stream(chunks))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        call = ToolCall("c1", "write_file", '{"path": "a", "content": "lo')
        assert ToolCallReady(call, cut_off=True) in got
        notice = next(e for e in got if isinstance(e, ProviderNotice))
        assert notice.text.endswith("inside a call of write_file (not run)")

    async def test_a_json_answer_to_a_stream_request_is_read_whole(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.append(
            Json(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "Listing.",
                                "tool_calls": [
                                    {
                                        "id": "c1",
                                        "type": "function",
                                        "function": {"name": "list_dir", "arguments": "{}"},
                                    }
                                ],
                            },
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 4},
                }
            )
        )
        got = await collect(self.provider(fake_llm, client).stream(request()))
        assert got == [
            TextChunk("Listing."),
            ToolCallReady(ToolCall("c1", "list_dir", "{}")),
            UsageReport(Usage(9, 4)),
            StreamFinished("tool_calls"),
        ]

    async def test_timeouts_and_refusals_name_the_url_once(self, client: HttpClient) -> None:
        dead = OpenAICompatProvider(
            base_url="http://127.0.0.1:9/v1", api_key_env="", client=client,
            retry=RetryPolicy(attempts=1),
        )  # fmt: skip
        with pytest.raises(ProviderError) as err:
            await collect(dead.stream(request()))
        assert "connection failed" in err.value.message
        assert err.value.message.count("127.0.0.1:9") == 1

    async def test_usage_is_estimated_when_the_server_sends_none(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.append(Stream(text_chunks("a", "b", "c")))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        usage = next(e.usage for e in got if isinstance(e, UsageReport))
        assert usage.output_tokens == 3 and usage.input_tokens > 0

    async def test_context_length_error_has_its_own_code(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        fake_llm.replies.append(
            Failure(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 8192 tokens",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    }
                },
            )
        )
        with pytest.raises(ProviderError) as err:
            await collect(self.provider(fake_llm, client).stream(request()))
        assert err.value.code == "context_too_long"

    @pytest.mark.parametrize(
        ("reply", "fragment", "code"),
        [
            (
                Raw(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {broken\n\n'),
                "not JSON",
                "provider_error",
            ),
            (
                Raw(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'),
                "before the answer was complete",
                "network",
            ),
            (
                Raw(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n', end="cut"),
                "connection lost",
                "network",
            ),
            (
                Raw(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n', end="stall"),
                "timed out waiting for data",
                "network",
            ),
        ],
    )
    async def test_malformed_cut_and_stalled_streams(
        self, fake_llm: FakeLLM, client: HttpClient, reply: Raw, fragment: str, code: str
    ) -> None:
        fake_llm.replies.append(reply)
        with pytest.raises(ProviderError) as err:
            await collect(self.provider(fake_llm, client).stream(request()))
        assert fragment in err.value.message and err.value.code == code

    async def test_keep_alive_comments_and_split_bytes(
        self, fake_llm: FakeLLM, client: HttpClient
    ) -> None:
        body = (
            b": keep-alive\n\n"
            + "".join(f"data: {json.dumps(c)}\n\n" for c in text_chunks("héllo ", "wörld")).encode()
            + b"data: [DONE]\n\n"
        )
        fake_llm.replies.append(Raw(body, split=5))
        got = await collect(self.provider(fake_llm, client).stream(request()))
        # what one read brings is merged, however the bytes were split
        assert "".join(e.text for e in got if isinstance(e, TextChunk)) == "héllo wörld"


async def test_providers_go_through_the_proxy_the_environment_names(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake_llm.root_url)
    base_url = "http://llm.invalid/v1"  # reachable only through the proxy
    fake_llm.replies.append(Stream(text_chunks("via proxy")))
    client = HttpClient()
    try:
        provider = OpenAICompatProvider(base_url=base_url, api_key_env="", client=client)
        got = await collect(provider.stream(request()))
        assert "".join(e.text for e in got if isinstance(e, TextChunk)) == "via proxy"
        assert [r.path for r in fake_llm.requests] == [base_url + "/chat/completions"]
    finally:
        await client.aclose()
    monkeypatch.setenv("NO_PROXY", "llm.invalid")  # this host is reached directly, or not
    client = HttpClient()
    try:
        provider = OpenAICompatProvider(
            base_url=base_url, api_key_env="", client=client, retry=RetryPolicy(attempts=1)
        )
        with pytest.raises(ProviderError) as err:
            await collect(provider.stream(request()))
        assert "connection failed" in err.value.message
        assert len(fake_llm.requests) == 1
    finally:
        await client.aclose()


async def test_the_read_timeout_counts_waits_for_the_server_not_a_busy_reader(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.replies.append(Stream(text_chunks("one ", "two")))
    client = HttpClient(read_timeout_s=0.2)
    try:
        provider = OpenAICompatProvider(base_url=fake_llm.base_url, api_key_env="", client=client)
        got: list[ProviderEvent] = []
        async for event in provider.stream(request()):
            got.append(event)
            if len(got) == 1:
                await asyncio.sleep(0.5)  # the reader is busy well past the read timeout
        assert "".join(e.text for e in got if isinstance(e, TextChunk)) == "one two"
        assert isinstance(got[-1], StreamFinished)
    finally:
        await client.aclose()


async def test_reads_are_paced_only_while_the_event_loop_runs_late() -> None:
    lag = LoopLag()
    assert lag.pause_s() == 0.0
    lag.enter()  # a request in flight
    try:
        for _ in range(3):  # the loop busy, as under a thousand streams
            await asyncio.sleep(LoopLag.TICK_S)
            time.sleep(0.05)  # noqa: ASYNC251 - the load itself: a loop pass that runs long
        assert lag.lag_s > PACE_AFTER_LAG_S
        assert 0.0 < lag.pause_s() <= PACE_MAX_S
        lag.lag_s = 10.0
        assert lag.pause_s() == PACE_MAX_S
        for _ in range(100):  # idle again: the average falls back
            await asyncio.sleep(LoopLag.TICK_S)
        assert lag.pause_s() == 0.0
        lag.lag_s = 10.0
    finally:
        lag.leave()
    for _ in range(3):  # no request in flight: the measuring stops, and nothing is paced
        await asyncio.sleep(LoopLag.TICK_S)
    assert lag.lag_s == 0.0 and lag.pause_s() == 0.0
