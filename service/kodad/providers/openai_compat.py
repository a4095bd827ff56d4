"""OpenAI-compatible chat completions over HTTP: OpenAI, Ollama, LM Studio, vLLM,
llama.cpp server, OpenRouter."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlparse

from kodad.domain.model import Message, ModelInfo, Role, ToolCall, Usage
from kodad.providers.base import (
    ProviderError,
    ProviderEvent,
    ProviderNotice,
    ProviderRequest,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ToolCallReady,
    UsageReport,
)
from kodad.providers.http import (
    DEFAULT_RETRY,
    RetryPolicy,
    Sleep,
    get_json,
    is_json,
    json_object,
    output_limit_notice,
    positive,
    post_stream,
    rejects_parameter,
)
from kodad.providers.sse import iter_sse_batches
from kodad.providers.transport import HttpClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OFFICIAL_HOST = "api.openai.com"
# What a server may name when it does not support tool calling.
_TOOL_PARAMETERS = ("tools", "tool_choice", "tool calling", "tool use", "function calling")
_FORMAT_PARAMETERS = ("response_format", "json_schema", "structured output")
# The max-tokens field sent, and the one to send when a server does not support it.
_MAX_TOKENS_FIELDS = (
    ("max_tokens", "max_completion_tokens"),
    ("max_completion_tokens", "max_tokens"),
)


def to_openai_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The history in the chat-completions message format."""
    out: list[dict[str, Any]] = []
    if request.system_prompt:
        out.append({"role": "system", "content": request.system_prompt})
    out.extend(_message(m) for m in request.messages)
    return out


def _message(m: Message) -> dict[str, Any]:
    if m.role is Role.USER:
        if not m.images:
            return {"role": "user", "content": m.text}
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
        for image in m.images:
            url = f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        return {"role": "user", "content": parts}
    if m.role is Role.ASSISTANT:
        body: dict[str, Any] = {"role": "assistant", "content": m.text or None}
        if m.tool_calls:
            body["tool_calls"] = [
                {
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.tool_name, "arguments": c.arguments_json},
                }
                for c in m.tool_calls
            ]
        return body
    if m.role is Role.SUMMARY:
        return {"role": "user", "content": m.text}
    assert m.tool_result is not None
    return {"role": "tool", "tool_call_id": m.tool_result.call_id, "content": m.tool_result.output}


def _usage(reported: dict[str, Any], default_input: int = 0) -> Usage:
    """Usage from a chat-completions `usage` object (streamed or whole)."""
    details = reported.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(reported.get("prompt_tokens") or default_input),
        output_tokens=int(reported.get("completion_tokens") or 0),
        cache_read_tokens=int(details.get("cached_tokens") or 0),
    )


def _merge(deltas: list[TextChunk | ThinkingChunk], delta: TextChunk | ThinkingChunk) -> None:
    """Appends `delta`, merged into the last one when both are text or both thinking: the
    deltas one read brings are one event, so a stream that fell behind catches up in few."""
    if deltas and type(deltas[-1]) is type(delta):
        deltas[-1] = type(delta)(deltas[-1].text + delta.text)
    else:
        deltas.append(delta)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAICompatProvider:
    """One provider per (base_url, api key variable); shares the registry's HTTP client."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str,
        client: HttpClient,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Sleep = asyncio.sleep,
        max_tokens_field: str = "",
    ) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        official = (urlparse(self.url).hostname or "") == OFFICIAL_HOST
        # Learnt: once the server says it does not support one field, the other is sent.
        self._max_tokens_field = max_tokens_field or (
            "max_completion_tokens" if official else "max_tokens"
        )
        self._api_key_env = api_key_env
        self._client = client
        self._retry = retry
        self._sleep = sleep

    async def aclose(self) -> None:
        return None  # the client belongs to the registry

    async def list_models(self) -> list[ModelInfo]:
        """GET {base_url}/models. The limits come from what servers of this API add: vLLM's
        `max_model_len`, OpenRouter's `context_length` and `top_provider`, others'
        `context_window` / `max_output_tokens`."""
        url = self.url.removesuffix("/chat/completions") + "/models"
        headers = self._headers()
        body = await get_json(self._client, url, headers, {})
        models = []
        for item in body.get("data") or ():
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            top: dict[str, Any] = item.get("top_provider") or {}
            if not isinstance(top, dict):
                top = {}
            window = (
                positive(item.get("context_window"))
                or positive(item.get("context_length"))
                or positive(item.get("max_model_len"))
            )
            output = positive(item.get("max_output_tokens")) or positive(
                top.get("max_completion_tokens")
            )
            name = item.get("name")
            models.append(
                ModelInfo(item["id"], name if isinstance(name, str) else "", window, output)
            )
        return models

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "text/event-stream"}
        if self._api_key_env:
            key = os.environ.get(self._api_key_env)
            if not key:
                raise ProviderError(
                    "auth", f"environment variable {self._api_key_env} of the service is not set"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _payload(self, request: ProviderRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.max_output_tokens:
            payload[self._max_tokens_field] = request.max_output_tokens
        if request.output_schema is not None:  # the answer's JSON Schema, not strict mode
            schema = {"name": "output", "schema": dict(request.output_schema)}
            payload["response_format"] = {"type": "json_schema", "json_schema": schema}
        return payload

    def _without_unsupported(
        self, error: ProviderError, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A server that says it does not support `stream_options` or `tools` is asked once
        without them; one that does not support the max-tokens field it got, with the
        other. Only an error saying so (see http.rejects_parameter) counts."""
        message = error.message
        if "stream_options" in payload and rejects_parameter(message, ("stream_options",)):
            return {k: v for k, v in payload.items() if k != "stream_options"}
        if "tools" in payload and rejects_parameter(message, _TOOL_PARAMETERS):
            return {k: v for k, v in payload.items() if k not in ("tools", "tool_choice")}
        if "response_format" in payload and rejects_parameter(message, _FORMAT_PARAMETERS):
            return {k: v for k, v in payload.items() if k != "response_format"}
        for field, other in _MAX_TOKENS_FIELDS:
            if field in payload and rejects_parameter(message, (field,)):
                self._max_tokens_field = other
                renamed = {k: v for k, v in payload.items() if k != field}
                return {**renamed, other: payload[field]}
        return None

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        payload = self._payload(request)
        dropped: list[str] = []

        def fallback(error: ProviderError, current: dict[str, Any]) -> dict[str, Any] | None:
            if len(dropped) >= 3:  # each parameter at most once
                return None
            replacement = self._without_unsupported(error, current)
            if replacement is not None:
                dropped.extend(k for k in current if k not in replacement)
            return replacement

        prompt_estimate = _estimate_tokens(json.dumps(payload["messages"]))
        async for event in post_stream(
            client=self._client,
            url=self.url,
            headers=self._headers(),
            payload=payload,
            read=lambda texts: self._read(texts, prompt_estimate),
            read_whole=lambda body: self._read_whole(body, prompt_estimate),
            retry=self._retry,
            sleep=self._sleep,
            fallback=fallback,
        ):
            if dropped:
                what = " and ".join(dropped)
                yield ProviderNotice(f"the server does not accept {what}; sent the request without")
                dropped.clear()
            yield event

    async def _read(
        self, texts: AsyncIterator[str], prompt_estimate: int
    ) -> AsyncIterator[ProviderEvent]:
        calls: dict[int, dict[str, str]] = {}
        finish = ""
        usage: Usage | None = None
        done = False
        pieces = 0
        async for batch in iter_sse_batches(texts):
            deltas: list[TextChunk | ThinkingChunk] = []  # this read's, adjacent ones merged
            for sse in batch:
                if sse.data.strip() == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json_object(self.url, sse.data, streamed=True)
                except ProviderError:
                    for merged in deltas:  # what came before the failure still counts
                        yield merged
                    raise
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if content := delta.get("content"):
                        pieces += 1
                        _merge(deltas, TextChunk(content))
                    if thinking := delta.get("reasoning_content") or delta.get("reasoning"):
                        pieces += 1
                        _merge(deltas, ThinkingChunk(thinking))
                    for part in delta.get("tool_calls") or ():
                        index = int(part.get("index", 0))
                        acc = calls.setdefault(index, {"id": "", "name": "", "args": ""})
                        acc["id"] = part.get("id") or acc["id"]
                        function = part.get("function") or {}
                        acc["name"] += function.get("name") or ""
                        acc["args"] += function.get("arguments") or ""
                        pieces += 1
                    finish = choice.get("finish_reason") or finish
                if reported := chunk.get("usage"):
                    usage = _usage(reported)
            for merged in deltas:
                yield merged
            if done:
                break
        if not done and not finish:
            raise ProviderError(
                "network", f"{self.url} ended the stream before the answer was complete"
            )
        ordered = [calls[i] | {"index": str(i)} for i in sorted(calls)]
        # Servers that report no usage get an estimate, so totals are never silently zero.
        usage = usage or Usage(input_tokens=prompt_estimate, output_tokens=pieces)
        for event in self._ending(ordered, usage, finish):
            yield event

    def _ending(
        self, calls: list[dict[str, str]], usage: Usage, finish: str
    ) -> list[ProviderEvent]:
        """The tool calls (the last one marked cut off when the token limit ended the answer
        inside its arguments), the usage, a notice at the limit, the finish."""
        events: list[ProviderEvent] = []
        for acc in calls:
            if not acc["name"]:
                raise ProviderError("provider_error", f"{self.url} sent a tool call without a name")
            arguments = acc["args"] or "{}"
            call = ToolCall(acc["id"] or f"call_{acc['index']}", acc["name"], arguments)
            events.append(
                ToolCallReady(call, cut_off=finish == "length" and not is_json(arguments))
            )
        events.append(UsageReport(usage))
        if finish == "length":
            events.append(output_limit_notice(events))
        events.append(StreamFinished(finish))
        return events

    def _read_whole(self, body: dict[str, Any], prompt_estimate: int) -> list[ProviderEvent]:
        """A chat.completion object (not streamed): what some proxies answer stream=true."""
        events: list[ProviderEvent] = []
        choices = body.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        if thinking := message.get("reasoning_content") or message.get("reasoning"):
            events.append(ThinkingChunk(str(thinking)))
        if content := message.get("content"):
            events.append(TextChunk(str(content)))
        calls = [
            {
                "id": str(c.get("id") or ""),
                "name": str((c.get("function") or {}).get("name") or ""),
                "args": str((c.get("function") or {}).get("arguments") or ""),
                "index": str(i),
            }
            for i, c in enumerate(message.get("tool_calls") or ())
        ]
        usage = _usage(body.get("usage") or {}, default_input=prompt_estimate)
        return [*events, *self._ending(calls, usage, str(choice.get("finish_reason") or "stop"))]
