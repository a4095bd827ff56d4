"""OpenAI-compatible chat completions over httpx: OpenAI, Ollama, LM Studio, vLLM,
llama.cpp server, OpenRouter."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from kodad.engine.model import Message, Role, ToolCall, Usage
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
from kodad.providers.sse import iter_sse

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries before the first token: connect errors and RETRY_STATUSES."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff = min(self.base_delay_s * 2.0**attempt, self.max_delay_s)
        return backoff * (0.5 + random.random() / 2)


def error_code(status: int) -> str:
    """Stable error code for an HTTP status of a provider."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status in (503, 529):
        return "overloaded"
    if 400 <= status < 500:
        return "bad_request"
    return "provider_error"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:2000]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        message = error.get("message") or json.dumps(error)
        return f"{kind}: {message}" if kind else str(message)
    return str(error)


def to_openai_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The history in the chat-completions message format."""
    out: list[dict[str, Any]] = []
    if request.system_prompt:
        out.append({"role": "system", "content": request.system_prompt})
    for m in request.messages:
        out.append(_message(m))
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
    assert m.tool_result is not None
    return {"role": "tool", "tool_call_id": m.tool_result.call_id, "content": m.tool_result.output}


class OpenAICompatProvider:
    """One provider per (base_url, api key variable); shares one httpx client."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str,
        client: httpx.AsyncClient,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._api_key_env = api_key_env
        self._client = client
        self._retry = retry
        self._sleep = sleep

    async def aclose(self) -> None:
        return None  # the client belongs to the registry

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
            payload["max_tokens"] = request.max_output_tokens
        return payload

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        headers = self._headers()
        payload = self._payload(request)
        attempt = 0
        started = False  # retries happen only before the first event of the answer
        while True:
            try:
                async with self._client.stream(
                    "POST", self.url, json=payload, headers=headers
                ) as response:
                    if response.status_code >= 400:
                        body = await response.aread()
                        raise ProviderError(
                            error_code(response.status_code),
                            f"{self.url} returned {response.status_code}: {_error_text(body)}",
                            status=response.status_code,
                            retry_after=_retry_after(response),
                        )
                    async for event in self._read(response):
                        started = True
                        yield event
                    return
            except ProviderError as e:
                if started or e.status not in RETRY_STATUSES or attempt + 1 >= self._retry.attempts:
                    raise
                error: ProviderError = e
            except httpx.TimeoutException as e:
                raise ProviderError("timeout", f"{self.url}: timed out ({e!r})") from None
            except httpx.TransportError as e:
                error = ProviderError("connect", f"{self.url}: connection failed ({e!r})")
                if started or attempt + 1 >= self._retry.attempts:
                    raise error from None
            delay = self._retry.delay(attempt, error.retry_after)
            attempt += 1
            yield ProviderNotice(
                f"{error.message}; retrying in {delay:.1f} s "
                f"(attempt {attempt + 1} of {self._retry.attempts})"
            )
            await self._sleep(delay)

    async def _read(self, response: httpx.Response) -> AsyncGenerator[ProviderEvent, None]:
        calls: dict[int, dict[str, str]] = {}
        finish = ""
        usage: Usage | None = None
        async for sse in iter_sse(response.aiter_lines()):
            if sse.data.strip() == "[DONE]":
                break
            try:
                chunk = json.loads(sse.data)
            except json.JSONDecodeError:
                raise ProviderError(
                    "provider_error", f"{self.url} sent invalid JSON in its stream: {sse.data!r}"
                ) from None
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                raise ProviderError(
                    "provider_error", f"{self.url} stream error: {_error_text(sse.data.encode())}"
                )
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if text := delta.get("content"):
                    yield TextChunk(text)
                if thinking := delta.get("reasoning_content") or delta.get("reasoning"):
                    yield ThinkingChunk(thinking)
                for part in delta.get("tool_calls") or ():
                    acc = calls.setdefault(
                        int(part.get("index", 0)), {"id": "", "name": "", "args": ""}
                    )
                    acc["id"] = part.get("id") or acc["id"]
                    function = part.get("function") or {}
                    acc["name"] += function.get("name") or ""
                    acc["args"] += function.get("arguments") or ""
                finish = choice.get("finish_reason") or finish
            if reported := chunk.get("usage"):
                details = reported.get("prompt_tokens_details") or {}
                usage = Usage(
                    input_tokens=int(reported.get("prompt_tokens") or 0),
                    output_tokens=int(reported.get("completion_tokens") or 0),
                    cache_read_tokens=int(details.get("cached_tokens") or 0),
                )
        for index in sorted(calls):
            acc = calls[index]
            call_id = acc["id"] or f"call_{index}"
            yield ToolCallReady(ToolCall(call_id, acc["name"], acc["args"] or "{}"))
        if usage is not None:
            yield UsageReport(usage)
        if finish == "length":
            yield ProviderNotice("the model stopped at its output token limit")
        yield StreamFinished(finish)
