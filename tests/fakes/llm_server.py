"""A local HTTP server speaking the streaming wire formats of the LLM APIs kodad reads:
OpenAI chat completions (POST /v1/chat/completions) and Anthropic messages
(POST /v1/messages).

Each POST takes the next queued reply: `Stream` (OpenAI chunks as `data:` events, then
`data: [DONE]`), `Raw` (exact bytes, written in pieces of `split` bytes, then an orderly end,
a cut connection or a stall), `Failure` (an HTTP error with its JSON body and headers), or
`Json` (a whole answer as 200 application/json). It also serves as an HTTP proxy for any
host.
Bodies go out with chunked transfer encoding, one flush per piece. Requests are recorded.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Stream:
    chunks: list[dict[str, Any]]
    done: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    # After `pause_after` chunks the answer waits until `resume` is set (a test's "now").
    pause_after: int = -1
    resume: threading.Event = field(default_factory=threading.Event)


@dataclass
class Raw:
    """Exact response bytes; `end` is "done" (orderly), "cut" (connection closed mid-body)
    or "stall" (no more bytes until the server stops)."""

    data: bytes
    split: int = 0
    end: str = "done"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Json:
    """A whole answer as `200 application/json`, whatever the request asked for (some
    proxies answer stream=true that way)."""

    body: dict[str, Any]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def text_chunks(*pieces: str, model: str = "fake-model") -> list[dict[str, Any]]:
    """Chunks streaming `pieces` as content deltas, then a stop chunk."""
    chunks = [_chunk({"role": "assistant", "content": ""}, model=model)]
    chunks += [_chunk({"content": p}, model=model) for p in pieces]
    chunks.append(_chunk({}, finish="stop", model=model))
    return chunks


def tool_call_chunks(
    calls: list[tuple[str, str, str]], *, split: int = 7, text: str = ""
) -> list[dict[str, Any]]:
    """Chunks for tool calls (id, name, arguments JSON), arguments split every `split` chars.

    Like real servers: id and name in the first delta of each call, arguments in pieces.
    """
    chunks = [_chunk({"role": "assistant", "content": text or None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        first = {"index": index, "id": call_id, "type": "function", "function": {"name": name}}
        chunks.append(
            _chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]})
        )
        for start in range(0, len(arguments), split):
            piece = arguments[start : start + split]
            chunks.append(
                _chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(_chunk({}, finish="tool_calls"))
    return chunks


def usage_chunk(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def _chunk(
    delta: dict[str, Any], *, finish: str | None = None, model: str = "fake-model"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client closed a kept-alive connection: normal
        super().handle_error(request, client_address)


class FakeLLM:
    """Start with `with FakeLLM() as fake:`; `fake.base_url` for OpenAI, `fake.root_url` for
    Anthropic."""

    def __init__(self) -> None:
        self.replies: deque[Stream | Raw | Failure | Json] = deque()
        self.release = threading.Event()
        self.requests: list[Recorded] = []
        # GET /v1/models answers these pages in turn (the last one again when they run out).
        self.model_pages: list[dict[str, Any]] = [{"object": "list", "data": []}]
        self.model_requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                fake.model_requests.append(self.path)
                if self.path.split("?")[0] != "/v1/models":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                page = min(len(fake.model_requests), len(fake.model_pages)) - 1
                self._json(200, fake.model_pages[page])

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                # A request sent through a proxy names the whole URL: this server is that
                # proxy too, answering for any host (the recorded path keeps the URL).
                path = urlsplit(self.path).path if "://" in self.path else self.path
                if path not in ("/v1/chat/completions", "/v1/messages"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if not fake.replies:
                    self._json(
                        500, {"error": {"type": "server_error", "message": "no reply queued"}}
                    )
                    return
                reply = fake.replies.popleft()
                if isinstance(reply, Failure):
                    self._json(reply.status, reply.body, reply.headers)
                    return
                if isinstance(reply, Json):
                    self._json(200, reply.body)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if isinstance(reply, Stream):
                    for i, chunk in enumerate(reply.chunks):
                        if i == reply.pause_after:
                            reply.resume.wait(60)
                        self._send(f"data: {json.dumps(chunk)}\n\n".encode())
                    if reply.done:
                        self._send(b"data: [DONE]\n\n")
                    end = "done"
                else:
                    step = reply.split or len(reply.data) or 1
                    for start in range(0, len(reply.data), step):
                        self._send(reply.data[start : start + step])
                    end = reply.end
                if end == "cut":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if end == "stall":
                    fake.release.wait(60)
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _send(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        """The Anthropic-style base URL (the provider appends /v1/messages)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Anthropic-style event: an `event:` line, a `data:` line and a blank line."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_stream(
    *blocks: dict[str, Any],
    stop_reason: str = "end_turn",
    usage: dict[str, int] | None = None,
    output_tokens: int = 12,
    ping: bool = True,
) -> bytes:
    """A whole Messages API stream. Each block is {"text": s}, {"thinking": s, "signature": s}
    or {"tool_use": (id, name, partial_json_pieces)}; deltas are sent as the API does."""
    out = sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-fake",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage or {"input_tokens": 25, "output_tokens": 1},
            },
        },
    )
    if ping:
        out += sse("ping", {"type": "ping"})
    for index, block in enumerate(blocks):
        if "text" in block:
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in block["text"]]
        elif "thinking" in block:
            start = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in block["thinking"]]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            call_id, name, pieces = block["tool_use"]
            start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]]
        out += sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            out += sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        out += sse("content_block_stop", {"type": "content_block_stop", "index": index})
    out += sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    out += sse("message_stop", {"type": "message_stop"})
    return out
