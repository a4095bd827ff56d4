"""Many agents at once through a real SSE provider: N sessions, each streaming T tokens at R
tokens/s from an OpenAI-compatible server in its own process, followed by clients in their own
processes; against a bare grpc.aio relay of the same streams (one message per token) in the
same run. Prints, per system: errors, tokens lost, token -> client latency p50/p99, first token
after start_turn, and server CPU per token delivered.

    python -m bench.sse_load [--sessions N] [--tokens T] [--rate R] [--clients C] [--quick]
        [--postgres]

Each token's text is the time (ns) the SSE server wrote it, then a space, so a delta that
carries several coalesced tokens still gives each its own latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.harness import Kodad, Stats, cpu_seconds, serve_bytes

# The SSE server and the relay: asyncio, so one process serves a thousand streams.


async def _sse_stream(writer: asyncio.StreamWriter, tokens: int, interval_s: float) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    def chunk(data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    loop = asyncio.get_running_loop()
    deadline = loop.time()
    for _ in range(tokens):
        deadline += interval_s
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        body = {"choices": [{"index": 0, "delta": {"content": f"{time.time_ns()} "}}]}
        chunk(f"data: {json.dumps(body)}\n\n".encode())
        await writer.drain()
    chunk(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
    chunk(b"data: [DONE]\n\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _serve_sse(tokens: int, interval_s: float, port_out: Any) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on a connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await _sse_stream(writer, tokens, interval_s)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port_out.put(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def sse_server(tokens: int, interval_s: float, port_out: Any) -> None:
    asyncio.run(_serve_sse(tokens, interval_s, port_out))


async def _serve_relay(base_url: str, port_out: Any) -> None:
    """The bare relay: a server stream per call, one message per SSE token, nothing stored."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx.AsyncClient(timeout=None, limits=limits)

    async def relay(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        body = {"model": "m", "messages": [], "stream": True}
        async with client.stream("POST", base_url + "/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if content:
                        yield content.encode()

    handler = grpc.unary_stream_rpc_method_handler(relay, lambda b: b, lambda b: b)
    await serve_bytes("bench.Relay", handler, port_out.put)


def relay_server(base_url: str, port_out: Any) -> None:
    asyncio.run(_serve_relay(base_url, port_out))


# The clients: each process follows its share of the sessions.


@dataclass
class Share:
    latencies_ms: list[float]
    first_token_ms: list[float]
    tokens: int
    errors: int


def token_latencies(text: str, received_ns: int, out: list[float]) -> int:
    """Adds to `out` the latency (ms) of each token stamp in `text` (a delta may carry
    several); how many there were."""
    stamps = text.split()
    out.extend((received_ns - int(stamp)) / 1e6 for stamp in stamps)
    return len(stamps)


async def _kodad_share(address: str, sessions: list[str]) -> Share:
    from kodad.gen.koda.v1 import engine_pb2 as epb
    from kodad.gen.koda.v1 import session_service_pb2 as pb
    from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

    share = Share([], [], 0, 0)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)

        async def one(session_id: str) -> None:
            started = time.time_ns()
            first = True
            try:
                call = stub.RunTurn()
                start = epb.StartTurn(session_id=session_id, text="go")
                await call.write(pb.RunTurnRequest(command=epb.EngineCommand(start_turn=start)))
                await call.done_writing()
                async for response in call:
                    event = response.event
                    if event.HasField("text_delta"):
                        now = time.time_ns()
                        if first:
                            share.first_token_ms.append((now - started) / 1e6)
                            first = False
                        text = event.text_delta.text
                        share.tokens += token_latencies(text, now, share.latencies_ms)
                    elif event.turn_ended.reason not in (0, epb.TURN_END_REASON_COMPLETED):
                        share.errors += 1
            except grpc.aio.AioRpcError:
                share.errors += 1

        await asyncio.gather(*(one(s) for s in sessions))
    return share


async def _relay_share(address: str, count: int) -> Share:
    share = Share([], [], 0, 0)
    async with grpc.aio.insecure_channel(address) as channel:
        stream = channel.unary_stream("/bench.Relay/Stream", lambda b: b, lambda b: b)

        async def one() -> None:
            started = time.time_ns()
            first = True
            try:
                async for message in stream(b""):
                    now = time.time_ns()
                    if first:
                        share.first_token_ms.append((now - started) / 1e6)
                        first = False
                    share.tokens += token_latencies(message.decode(), now, share.latencies_ms)
            except grpc.aio.AioRpcError:
                share.errors += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return share


def client(kind: str, address: str, work: list[str] | int, go: Any, out: Any) -> None:
    out.put("ready")
    go.wait()  # every client starts at once
    if kind.startswith("kodad"):
        assert isinstance(work, list)
        share = asyncio.run(_kodad_share(address, work))
    else:
        assert isinstance(work, int)
        share = asyncio.run(_relay_share(address, work))
    out.put(share)


@dataclass(frozen=True)
class Result:
    name: str
    errors: int
    lost: int
    latency: Stats
    first: Stats
    cpu_us_per_token: float

    def line(self) -> str:
        return (
            f"{self.name:<8} errors {self.errors}  lost {self.lost}  token->client p50 "
            f"{self.latency.p50:.1f} ms  p99 {self.latency.p99:.1f} ms  first token p50 "
            f"{self.first.p50:.1f} ms  p99 {self.first.p99:.1f} ms  server CPU "
            f"{self.cpu_us_per_token:.0f} us/token"
        )


def _run_clients(
    kind: str, address: str, shares: list[list[str]] | list[int], server_pid: int, expected: int
) -> Result:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=client, args=(kind, address, w, go, out)) for w in shares]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get() == "ready"
    cpu_before = cpu_seconds(server_pid)
    go.set()
    results: list[Share] = [out.get() for _ in procs]
    cpu = cpu_seconds(server_pid) - cpu_before
    for p in procs:
        p.join()
    latencies = [v for r in results for v in r.latencies_ms]
    firsts = [v for r in results for v in r.first_token_ms]
    tokens = sum(r.tokens for r in results)
    return Result(
        kind,
        sum(r.errors for r in results),
        expected - tokens,
        Stats.of(latencies),
        Stats.of(firsts),
        cpu / max(tokens, 1) * 1e6,
    )


async def _sessions(address: str, base_url: str, count: int, workspace: Path) -> list[str]:
    from kodad.gen.koda.v1 import session_pb2 as spb
    from kodad.gen.koda.v1 import session_service_pb2 as pb
    from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=base_url
    )
    session = spb.Session(
        workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO, provider=provider
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        made = [
            await stub.CreateSession(pb.CreateSessionRequest(session=session)) for _ in range(count)
        ]
    return [m.session.id for m in made]


def _kodad(
    name: str, work: Path, base_url: str, sessions: int, clients: int, expected: int,
    *store: str,
) -> Result:  # fmt: skip
    kodad = Kodad(work / "data", *store)
    try:
        workspace = work / "ws"
        workspace.mkdir(parents=True)
        ids = asyncio.run(_sessions(kodad.address, base_url, sessions, workspace))
        shares = [ids[i::clients] for i in range(clients)]
        return _run_clients(name, kodad.address, shares, kodad.pid, expected)
    finally:
        kodad.stop()


def measure(
    sessions: int, tokens: int, rate: float, clients: int, postgres: bool = False
) -> list[Result]:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    sse = ctx.Process(target=sse_server, args=(tokens, 1 / rate, ports), daemon=True)
    sse.start()
    base_url = f"http://127.0.0.1:{ports.get()}/v1"
    expected = sessions * tokens
    results = []
    try:
        relay = ctx.Process(target=relay_server, args=(base_url, ports), daemon=True)
        relay.start()
        relay_address = f"127.0.0.1:{ports.get()}"
        counts = [sessions // clients + (i < sessions % clients) for i in range(clients)]
        assert relay.pid is not None
        results.append(_run_clients("relay", relay_address, counts, relay.pid, expected))
        relay.kill()
        with tempfile.TemporaryDirectory() as tmp:
            run = (base_url, sessions, clients, expected)
            results.append(_kodad("kodad", Path(tmp) / "sqlite", *run))
            if postgres:  # one replica on a PostgreSQL database of its own
                from tests.pg import PostgresCluster

                cluster = PostgresCluster()
                cluster.start()
                try:
                    dsn = asyncio.run(cluster.new_database())
                    results.append(_kodad("kodad-pg", Path(tmp) / "pg", *run, "--store", dsn))
                finally:
                    cluster.stop()
    finally:
        sse.kill()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="tokens/s of each session")
    parser.add_argument("--clients", type=int, default=max(2, (os.cpu_count() or 2)))
    parser.add_argument("--quick", action="store_true", help="50 sessions x 20 tokens")
    parser.add_argument(
        "--postgres", action="store_true",
        help="kodad on PostgreSQL too (needs its server programs: tools/postgres.sh)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.tokens = 50, 20
    print(
        f"{args.sessions} sessions x {args.tokens} tokens at {args.rate:g} tok/s, "
        f"{args.clients} client processes:",
        file=sys.stderr,
    )
    for result in measure(args.sessions, args.tokens, args.rate, args.clients, args.postgres):
        print(result.line())


if __name__ == "__main__":
    main()
