"""The limits kodad is measured against, run in the same invocation:

- the transport limit: a bare grpc.aio server that streams the same serialized
  EngineEvent messages (as RunTurnResponse) over one bidi stream as fast as it can;
- the provider limit: a plain httpx reader of the same local SSE stream kodad's
  OpenAI-compatible provider reads (see `SseServer`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

from bench.harness import serve_bytes
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_service_pb2 as pb

TRANSPORT_METHOD = "/bench.Transport/Stream"


def sample_events(count: int) -> list[bytes]:
    """`count` serialized RunTurnResponse messages shaped like kodad's text deltas."""
    out = []
    for seq in range(1, count + 1):
        event = epb.EngineEvent(
            session_id="s_01jd3k0000000000000000000", turn_id="t_01jd3k0000000000000000000", seq=seq
        )
        event.create_time.FromMicroseconds(1_700_000_000_000_000 + seq)
        event.text_delta.text = "x"
        out.append(pb.RunTurnResponse(event=event).SerializeToString())
    return out


async def serve_transport(count: int) -> None:
    """Runs the transport-limit server; prints its port, serves until killed."""
    payloads = sample_events(count)

    async def stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async for _ in requests:
            break
        for payload in payloads:
            yield payload

    handler = grpc.stream_stream_rpc_method_handler(stream, lambda b: b, lambda b: b)
    await serve_bytes("bench.Transport", handler, lambda port: print(port, flush=True))


class SseServer:
    """An OpenAI-compatible /v1/chat/completions that streams `tokens` deltas, one every
    `interval_s`; each delta's text is the wall-clock time (ns) it was written."""

    def __init__(self, tokens: int, interval_s: float) -> None:
        self.tokens = tokens
        self.interval_s = interval_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                deadline = time.perf_counter()
                for _ in range(outer.tokens):
                    deadline += outer.interval_s
                    while (left := deadline - time.perf_counter()) > 0:
                        time.sleep(left)
                    chunk = {"choices": [{"index": 0, "delta": {"content": f"{time.time_ns()} "}}]}
                    self._send(f"data: {json.dumps(chunk)}\n\n".encode())
                self._send(
                    b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
                )
                self._send(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _send(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_sse(tokens: int, interval_s: float) -> None:
    """Runs the SSE server in this process; prints its port, serves until killed."""
    server = SseServer(tokens, interval_s)
    print(server.base_url.rsplit(":", 1)[1].split("/")[0], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "transport":
        asyncio.run(serve_transport(int(sys.argv[2])))
    else:
        serve_sse(int(sys.argv[2]), float(sys.argv[3]))
