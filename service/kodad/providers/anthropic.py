"""Anthropic Messages API over HTTP: POST {base_url}/v1/messages with stream=true."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from kodad.domain import jsontext
from kodad.domain.model import Message, ModelInfo, Role, ToolCall, Usage
from kodad.providers.base import (
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ThinkingSignature,
    ToolCallReady,
    UsageReport,
)
from kodad.providers.http import (
    DEFAULT_RETRY,
    MAX_MODEL_PAGES,
    RetryPolicy,
    Sleep,
    error_code,
    get_json,
    is_json,
    output_limit_notice,
    positive,
    post_stream,
)
from kodad.providers.sse import iter_sse
from kodad.providers.transport import HttpClient

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192
# With an output schema: the tool whose input is the final answer (forced when the turn asks
# again); its call reaches the turn as the answer's text, never as a tool call.
OUTPUT_TOOL = "respond"
OUTPUT_TOOL_DESCRIPTION = (
    "Give your final answer: call this once, when you are done, with the answer as its input."
)
_STREAM_ERRORS = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limited",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_request_error": "bad_request",
    "request_too_large": "context_too_long",
}


def _tool_input(arguments_json: str) -> dict[str, Any]:
    try:
        value = jsontext.loads(arguments_json or "{}")
    except ValueError:  # not JSON, or nested too deep
        return {"_unparsed_arguments": arguments_json[:10_000]}
    return value if isinstance(value, dict) else {"_arguments": value}


def to_anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The history as Messages API turns: roles alternate, tool results are user-role
    tool_result blocks, thinking goes back first with its signature."""
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role is Role.USER:
            blocks: list[dict[str, Any]] = [
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": image.mime_type,
                        "data": base64.b64encode(image.data).decode(),
                    },
                }
                for image in m.images
            ]
            if m.text:
                blocks.append({"type": "text", "text": m.text})
            add("user", blocks)
        elif m.role is Role.SUMMARY:
            add("user", [{"type": "text", "text": m.text}])
        elif m.role is Role.ASSISTANT:
            blocks = []
            if m.thinking and m.thinking_signature:  # unsigned thinking cannot be sent back
                blocks.append(
                    {"type": "thinking", "thinking": m.thinking, "signature": m.thinking_signature}
                )
            if m.text:
                blocks.append({"type": "text", "text": m.text})
            blocks += [
                {
                    "type": "tool_use",
                    "id": c.call_id,
                    "name": c.tool_name,
                    "input": _tool_input(c.arguments_json),
                }
                for c in m.tool_calls
            ]
            add("assistant", blocks)
        elif m.tool_result is not None:
            r = m.tool_result
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": r.call_id,
                        "content": r.output or "(no output)",
                        "is_error": r.is_error,
                    }
                ],
            )
    return out


CACHE_CONTROL = {"type": "ephemeral"}
_UNCACHEABLE = ("thinking", "redacted_thinking")


def _mark_cache_breakpoints(payload: dict[str, Any]) -> None:
    """Marks the prefix the next request repeats, at most 4 breakpoints as the API allows:
    the system prompt, the last tool, the end of the history, and the end of the message
    before the last user turn (so that the previous request's prefix is marked again)."""
    if isinstance(payload.get("system"), str):
        payload["system"] = [
            {"type": "text", "text": payload["system"], "cache_control": CACHE_CONTROL}
        ]
    if payload.get("tools"):
        payload["tools"][-1] = {**payload["tools"][-1], "cache_control": CACHE_CONTROL}
    messages = payload["messages"]
    marked = [len(messages) - 1] if messages else []
    earlier = [i for i, m in enumerate(messages[:-1]) if m["role"] == "user"]
    if earlier:
        marked.append(earlier[-1])
    for i in marked:
        content = messages[i]["content"]
        cacheable = [j for j, b in enumerate(content) if b["type"] not in _UNCACHEABLE]
        if cacheable:
            content[cacheable[-1]] = {**content[cacheable[-1]], "cache_control": CACHE_CONTROL}


class AnthropicProvider:
    """One provider per (base_url, api key variable); shares the registry's HTTP client."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str,
        client: HttpClient,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Sleep = asyncio.sleep,
        prompt_caching: bool = True,
    ) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"
        self._prompt_caching = prompt_caching
        self._api_key_env = api_key_env
        self._client = client
        self._retry = retry
        self._sleep = sleep

    async def aclose(self) -> None:
        return None  # the client belongs to the registry

    async def list_models(self) -> list[ModelInfo]:
        """GET {base_url}/v1/models, every page (after_id); `max_input_tokens` and
        `max_tokens` where the API states them."""
        url = self.url.removesuffix("/messages") + "/models"
        headers = self._headers()
        models: list[ModelInfo] = []
        params = {"limit": "1000"}
        for _ in range(MAX_MODEL_PAGES):
            body = await get_json(self._client, url, headers, params)
            for item in body.get("data") or ():
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    name = item.get("display_name")
                    models.append(
                        ModelInfo(
                            item["id"],
                            name if isinstance(name, str) else "",
                            positive(item.get("max_input_tokens")),
                            positive(item.get("max_tokens")),
                        )
                    )
            last = body.get("last_id")
            if not body.get("has_more") or not isinstance(last, str) or not last:
                break
            params = {"limit": "1000", "after_id": last}
        return models

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION, "accept": "text/event-stream"}
        if self._api_key_env:
            key = os.environ.get(self._api_key_env)
            if not key:
                raise ProviderError(
                    "auth", f"environment variable {self._api_key_env} of the service is not set"
                )
            headers["x-api-key"] = key
        return headers

    def _payload(self, request: ProviderRequest) -> dict[str, Any]:
        max_tokens = request.max_output_tokens or DEFAULT_MAX_TOKENS
        payload: dict[str, Any] = {
            "model": request.model,
            "max_tokens": max_tokens,
            "messages": to_anthropic_messages(list(request.messages)),
            "stream": True,
        }
        if request.system_prompt:
            payload["system"] = request.system_prompt
        if request.tools:
            payload["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        schema = request.output_schema
        if schema is not None and schema.get("type") == "object":  # what input_schema takes
            answer = {"name": OUTPUT_TOOL, "description": OUTPUT_TOOL_DESCRIPTION,
                      "input_schema": dict(schema)}  # fmt: skip
            payload["tools"] = [*payload.get("tools", []), answer]
            if request.force_output and not request.thinking_budget_tokens:
                payload["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
        if request.thinking_budget_tokens:
            budget = max(1024, request.thinking_budget_tokens)
            payload["thinking"] = {"type": "enabled", "budget_tokens": budget}
            payload["max_tokens"] = max(max_tokens, budget + 1024)
        if self._prompt_caching:
            _mark_cache_breakpoints(payload)
        return payload

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        async for event in post_stream(
            client=self._client,
            url=self.url,
            headers=self._headers(),
            payload=self._payload(request),
            read=self._read,
            read_whole=self._read_whole,
            retry=self._retry,
            sleep=self._sleep,
        ):
            yield event

    def _fail(self, text: str, code: str = "provider_error") -> ProviderError:
        return ProviderError(code, f"{self.url}: {text}")

    async def _read(self, texts: AsyncIterator[str]) -> AsyncIterator[ProviderEvent]:
        """The event stream. Event, delta and content block types this code does not know
        are skipped: the API adds new ones and says clients must ignore them."""
        blocks: dict[int, dict[str, str]] = {}
        usage: dict[str, int] = {}
        stop_reason = ""
        finished = False
        async for sse in iter_sse(texts):
            try:
                data = json.loads(sse.data)
            except json.JSONDecodeError:
                raise self._fail(f"event {sse.event!r} is not JSON: {sse.data[:200]!r}") from None
            if not isinstance(data, dict):
                raise self._fail(f"event {sse.event!r} is not an object")
            kind = data.get("type") or sse.event
            if kind == "message_start":
                usage.update((data.get("message") or {}).get("usage") or {})
            elif kind == "content_block_start":
                block = data.get("content_block") or {}
                blocks[int(data.get("index", 0))] = {
                    "type": str(block.get("type", "")),
                    "id": str(block.get("id", "")),
                    "name": str(block.get("name", "")),
                    "json": "",
                    "signature": "",
                    "stopped": "",
                }
                if block.get("type") == "text" and block.get("text"):
                    yield TextChunk(block["text"])
            elif kind == "content_block_delta":
                index = int(data.get("index", 0))
                block_state = blocks.get(index)
                if block_state is None:
                    raise self._fail(f"content_block_delta for unknown block {index}")
                delta = data.get("delta") or {}
                match delta.get("type"):
                    case "text_delta":
                        if delta.get("text"):
                            yield TextChunk(delta["text"])
                    case "thinking_delta":
                        if delta.get("thinking"):
                            yield ThinkingChunk(delta["thinking"])
                    case "signature_delta":
                        block_state["signature"] += delta.get("signature", "")
                    case "input_json_delta":
                        block_state["json"] += delta.get("partial_json", "")
                    case _:
                        pass  # citations and what the API adds later
            elif kind == "content_block_stop":
                block_state = blocks.get(int(data.get("index", 0)), {})
                block_state["stopped"] = "yes"
                if block_state.get("type") == "thinking" and block_state.get("signature"):
                    yield ThinkingSignature(block_state["signature"])
            elif kind == "message_delta":
                stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                usage.update(data.get("usage") or {})
            elif kind == "message_stop":
                finished = True
                break
            elif kind == "error":
                error = data.get("error") or {}
                etype, message = str(error.get("type", "error")), str(error.get("message", ""))
                code = _STREAM_ERRORS.get(etype, "provider_error")
                if code == "bad_request":
                    code = error_code(400, message)
                raise self._fail(f"{etype}: {message}", code)
            # ping, and event types the API adds later: nothing to do
        if not finished:
            raise self._fail("the stream ended before message_stop", "network")
        calls = [
            (ToolCall(b["id"], b["name"], b["json"] or "{}"), b["stopped"] == "yes")
            for _, b in sorted(blocks.items())
            if b["type"] == "tool_use"
        ]
        for event in self._ending(calls, usage, stop_reason):
            yield event

    def _ending(
        self, calls: list[tuple[ToolCall, bool]], usage: dict[str, Any], stop_reason: str
    ) -> list[ProviderEvent]:
        """The tool calls (those the token limit ended inside marked cut off: their input is
        incomplete), the usage, a notice at the limit, the finish. Input that is not JSON is
        passed on as it came: the tool answers the model with an error and the turn goes on."""
        at_limit = stop_reason == "max_tokens"
        events: list[ProviderEvent] = []
        for call, _ in [c for c in calls if c[0].tool_name == OUTPUT_TOOL]:
            events.append(TextChunk("\n" + call.arguments_json))  # the answer, as JSON
        for call, stopped in [c for c in calls if c[0].tool_name != OUTPUT_TOOL]:
            cut_off = at_limit and (not stopped or not is_json(call.arguments_json))
            events.append(ToolCallReady(call, cut_off=cut_off))
        cache_read = int(usage.get("cache_read_input_tokens") or 0)
        cache_write = int(usage.get("cache_creation_input_tokens") or 0)
        events.append(
            UsageReport(
                Usage(
                    input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
                    output_tokens=int(usage.get("output_tokens") or 0),
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                )
            )
        )
        if at_limit:
            events.append(output_limit_notice(events))
        events.append(StreamFinished(stop_reason))
        return events

    def _read_whole(self, body: dict[str, Any]) -> list[ProviderEvent]:
        """A Message object (not streamed): what some proxies answer stream=true."""
        events: list[ProviderEvent] = []
        calls: list[tuple[ToolCall, bool]] = []
        for block in body.get("content") or ():
            if not isinstance(block, dict):
                continue
            match block.get("type"):
                case "text":
                    if block.get("text"):
                        events.append(TextChunk(str(block["text"])))
                case "thinking":
                    if block.get("thinking"):
                        events.append(ThinkingChunk(str(block["thinking"])))
                    if block.get("signature"):
                        events.append(ThinkingSignature(str(block["signature"])))
                case "tool_use":
                    arguments = json.dumps(block.get("input") or {})
                    call = ToolCall(str(block.get("id", "")), str(block.get("name", "")), arguments)
                    calls.append((call, True))
                case _:
                    pass
        usage = body.get("usage") or {}
        return [*events, *self._ending(calls, usage, str(body.get("stop_reason") or ""))]
