"""A local HTTP server speaking the OpenAI chat-completions streaming wire format.

Each POST /v1/chat/completions takes the next queued reply: a list of SSE chunks (sent with
chunked transfer encoding, one flush per event, then `data: [DONE]`), or an HTTP error with
its JSON body and headers. Requests are recorded for assertions.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Stream:
    chunks: list[dict[str, Any]]
    done: bool = True


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


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


class FakeOpenAI:
    """Start with `with FakeOpenAI() as fake:`; `fake.base_url` ends in /v1."""

    def __init__(self) -> None:
        self.replies: deque[Stream | Failure] = deque()
        self.requests: list[Recorded] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if self.path != "/v1/chat/completions":
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
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in reply.chunks:
                    self._send(f"data: {json.dumps(chunk)}\n\n")
                if reply.done:
                    self._send("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _send(self, text: str) -> None:
                data = text.encode()
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
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
