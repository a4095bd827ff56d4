"""`make bench`: kodad against the limits of its own stack, as ratios taken in one run.

Prints a table (figure, kodad, baseline, ratio, goal) and writes it, with the machine and
date, to bench/RESULTS.md, plus bench/latency.png (latency against concurrent turns).
Figures, not pass/fail: nothing here asserts a goal.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import sse_load
from bench.harness import Child, Kodad, Stats, cpu_seconds, rss_bytes
from bench.long_session import long_session
from kodad.domain.model import SessionRecord
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.store import SqliteStore

HERE = Path(__file__).parent


@dataclass
class Row:
    figure: str
    kodad: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"


@dataclass
class Sizes:
    deltas: int = 100_000
    latency_tokens: int = 2000
    paced_sessions: int = 1000
    paced_deltas: int = 500
    idle_sessions: int = 10_000
    stored_sessions: int = 100_000
    scaling: tuple[int, ...] = (1, 10, 100, 1000)
    scaling_deltas: int = 200
    sse_sessions: int = 1000
    sse_tokens: int = 100
    sse_rate: float = 20.0
    long_session_turns: int = 1000
    paced_rate: int = 50  # tokens/s of each of figure 3's sessions


def scripted(*rounds: list[dict[str, Any]]) -> spb.ProviderConfig:
    return spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_SCRIPTED, script_json=json.dumps({"rounds": list(rounds)})
    )


async def create(
    stub: pb_grpc.SessionServiceStub, work: Path, provider: spb.ProviderConfig | None = None
) -> str:
    """A session on the bench's own empty workspace (`work/workspace`): not on `work`, which
    holds the services' data, so a turn's checkpoint captures a directory, not the bench."""
    workspace = work / "workspace"
    workspace.mkdir(exist_ok=True)
    session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
    if provider is not None:
        session.provider.CopyFrom(provider)
    return (await stub.CreateSession(pb.CreateSessionRequest(session=session))).session.id


def start(session_id: str, text: str = "go") -> pb.RunTurnRequest:
    return pb.RunTurnRequest(
        command=epb.EngineCommand(start_turn=epb.StartTurn(session_id=session_id, text=text))
    )


async def run_turn(
    stub: pb_grpc.SessionServiceStub,
    session_id: str,
    on_event: Callable[[epb.EngineEvent, int], None] | None = None,
) -> int:
    """Runs one turn; returns the number of events; calls on_event(event, receive_ns)."""
    call = stub.RunTurn()
    await call.write(start(session_id))
    await call.done_writing()
    count = 0
    async for response in call:
        count += 1
        if on_event is not None:
            on_event(response.event, time.time_ns())
        ended = response.event.turn_ended
        if response.event.HasField("turn_ended") and ended.reason != epb.TURN_END_REASON_COMPLETED:
            raise RuntimeError(f"turn ended {ended}")
    return count


def event_latency_ms(event: epb.EngineEvent, received_ns: int) -> float:
    return (received_ns - event.create_time.ToNanoseconds()) / 1e6


# Figure 1: throughput of one turn against the transport limit.


async def throughput(work: Path, sizes: Sizes) -> list[Row]:
    kodad = Kodad(work / "throughput")
    try:
        async with grpc.aio.insecure_channel(kodad.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            step = [{"repeat": sizes.deltas, "text": "x"}]
            session = await create(stub, work, scripted(step, step, step, step))
            rates = []
            for _ in range(3):
                began = time.perf_counter()
                await run_turn(stub, session)
                # Deltas of "x" delivered, as text: the store-behind ones arrive coalesced.
                rates.append(sizes.deltas / (time.perf_counter() - began))
    finally:
        kodad.stop()
    transport = Child("transport", str(sizes.deltas))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{transport.port}") as channel:
            limits = []
            for _ in range(3):
                rpc = channel.stream_stream(
                    "/bench.Transport/Stream",
                    request_serializer=lambda b: b,
                    response_deserializer=pb.RunTurnResponse.FromString,
                )
                call = rpc()
                began = time.perf_counter()
                await call.write(b"go")
                await call.done_writing()
                count = 0
                async for _ in call:
                    count += 1
                limits.append(count / (time.perf_counter() - began))
    finally:
        transport.stop()
    best, limit = max(rates), max(limits)
    return [
        Row(
            f"1. deltas/s of one RunTurn ({sizes.deltas:,} deltas, stored) vs messages/s",
            f"{best:,.0f}",
            f"{limit:,.0f}",
            f"{best / limit:.2f}",
            ">= 0.80",
        )
    ]


# Figure 2: added latency from an SSE token to its text_delta at the client.


async def sse_latency(work: Path, sizes: Sizes) -> list[Row]:
    sse = Child("sse", str(sizes.latency_tokens), "0.002")
    base_url = f"http://127.0.0.1:{sse.port}/v1"
    try:
        plain: list[float] = []
        async with httpx.AsyncClient(timeout=60) as client:
            body = {"model": "m", "messages": [], "stream": True}
            async with client.stream("POST", base_url + "/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        delta = json.loads(line[6:])["choices"][0]["delta"]
                        if content := delta.get("content"):
                            plain.append((time.time_ns() - int(content)) / 1e6)
        kodad = Kodad(work / "latency")
        measured: list[float] = []
        try:
            async with grpc.aio.insecure_channel(kodad.address) as channel:
                stub = pb_grpc.SessionServiceStub(channel)
                provider = spb.ProviderConfig(
                    kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=base_url
                )
                session = await create(stub, work, provider)

                def on_event(event: epb.EngineEvent, received: int) -> None:
                    if event.WhichOneof("payload") == "text_delta":
                        # One delta may carry several tokens (all that one read brought).
                        sse_load.token_latencies(event.text_delta.text, received, measured)

                await run_turn(stub, session, on_event)
        finally:
            kodad.stop()
    finally:
        sse.stop()
    k, b = Stats.of(measured), Stats.of(plain)
    return [
        Row(
            "2. added latency SSE token -> text_delta, p50 (ms)",
            f"{k.p50 - b.p50:.2f}",
            f"{b.p50:.2f} (httpx)",
            f"{k.p50:.2f} total",
            "<= 1",
        ),
        Row(
            "2. added latency SSE token -> text_delta, p99 (ms)",
            f"{k.p99 - b.p99:.2f}",
            f"{b.p99:.2f} (httpx)",
            f"{k.p99:.2f} total",
            "<= 5",
        ),
    ]


# Figures 3 and 6: many turns at once.


async def concurrent_turns(address: str, sessions: list[str]) -> tuple[Stats, int, float, int]:
    """Runs one turn on every session at once: event latency, errors, seconds, events."""
    latencies: list[float] = []
    errors = 0

    def on_event(event: epb.EngineEvent, received: int) -> None:
        latencies.append(event_latency_ms(event, received))

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        began = time.perf_counter()
        results = await asyncio.gather(
            *(run_turn(stub, s, on_event) for s in sessions), return_exceptions=True
        )
        elapsed = time.perf_counter() - began
    errors = sum(1 for r in results if isinstance(r, BaseException))
    events = sum(r for r in results if isinstance(r, int))
    return Stats.of(latencies), errors, elapsed, events


async def make_sessions(
    address: str, work: Path, count: int, provider: spb.ProviderConfig | None
) -> list[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        out: list[str] = []
        for start_at in range(0, count, 200):
            out += await asyncio.gather(
                *(create(stub, work, provider) for _ in range(min(200, count - start_at)))
            )
        return out


async def paced(work: Path, sizes: Sizes) -> list[Row]:
    kodad = Kodad(work / "paced")
    try:
        steps: list[dict[str, Any]] = []
        for _ in range(sizes.paced_deltas):
            steps += [{"text": "tok "}, {"delay_ms": 1000 // sizes.paced_rate}]
        sessions = await make_sessions(kodad.address, work, sizes.paced_sessions, scripted(steps))
        cpu_before = cpu_seconds(kodad.pid)
        stats, errors, elapsed, events = await concurrent_turns(kodad.address, sessions)
        cores = (cpu_seconds(kodad.pid) - cpu_before) / elapsed
    finally:
        kodad.stop()
    label = (
        f"3. {sizes.paced_sessions:,} sessions x {sizes.paced_deltas}-delta turns at "
        f"{sizes.paced_rate} tok/s"
    )
    return [
        Row(label + ": errors", str(errors), "-", "-", "0"),
        Row(
            label + ": event latency p99 (ms)",
            f"{stats.p99:.1f}",
            "-",
            f"p50 {stats.p50:.1f}",
            "<= 1000",
        ),
        Row(
            label + ": server CPU (cores used)",
            f"{cores:.2f}",
            "-",
            f"{events / elapsed:,.0f} events/s; the turns took {elapsed:.1f} s for "
            f"{sizes.paced_deltas / sizes.paced_rate:.1f} s of tokens",
            "-",
        ),
    ]


async def scaling(
    work: Path, sizes: Sizes
) -> tuple[list[Row], list[tuple[int, float, float, float]]]:
    kodad = Kodad(work / "scaling")
    points = []
    try:
        for n in sizes.scaling:
            step = [{"repeat": sizes.scaling_deltas, "text": "x"}]
            sessions = await make_sessions(kodad.address, work, n, scripted(step))
            stats, errors, elapsed, events = await concurrent_turns(kodad.address, sessions)
            if errors:
                raise RuntimeError(f"{errors} turns failed at concurrency {n}")
            points.append((n, events / elapsed, stats.p50, stats.p99))
    finally:
        kodad.stop()
    rows = [
        Row(
            f"6. {n:>4} concurrent turns: events/s | latency p50 / p99 (ms)",
            f"{rate:,.0f}",
            "-",
            f"{p50:.1f} / {p99:.1f}",
            "-",
        )
        for n, rate, p50, p99 in points
    ]
    return rows, points


# Figure 4: memory and reads at scale.


async def memory_and_reads(work: Path, sizes: Sizes) -> list[Row]:
    kodad = Kodad(work / "memory")
    try:
        sessions = await make_sessions(kodad.address, work, 100, None)
        async with grpc.aio.insecure_channel(kodad.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            for s in sessions:  # warm up every code path first
                await run_turn(stub, s)
            before = rss_bytes(kodad.pid)
            sessions = await make_sessions(kodad.address, work, sizes.idle_sessions, None)
            for batch in range(0, len(sessions), 50):
                await asyncio.gather(*(run_turn(stub, s) for s in sessions[batch : batch + 50]))
            per_session = (rss_bytes(kodad.pid) - before) / len(sessions)
    finally:
        kodad.stop()

    data = work / "stored"
    store = SqliteStore(data / "kodad.db")
    await store.open()
    now = time.time_ns() // 1000
    from kodad.domain.ids import new_id

    for batch in range(0, sizes.stored_sessions, 1000):
        await asyncio.gather(
            *(
                store.create_session(
                    SessionRecord(
                        id=new_id("s"),
                        workspace=str(work),
                        create_time=now,
                        update_time=now,
                        labels={"team": str(i % 10)},
                    )
                )
                for i in range(batch, min(batch + 1000, sizes.stored_sessions))
            )
        )
    await store.close()
    kodad = Kodad(data)
    try:
        async with grpc.aio.insecure_channel(kodad.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            pages: list[float] = []
            token = ""
            ids = []
            for _ in range(300):
                began = time.perf_counter()
                page = await stub.ListSessions(
                    pb.ListSessionsRequest(page_size=100, page_token=token)
                )
                pages.append((time.perf_counter() - began) * 1000)
                token = page.next_page_token
                ids += [s.id for s in page.sessions]
            gets: list[float] = []
            for session_id in random.sample(ids, 1000):
                began = time.perf_counter()
                await stub.GetSession(pb.GetSessionRequest(session_id=session_id))
                gets.append((time.perf_counter() - began) * 1000)
    finally:
        kodad.stop()
    lists, reads = Stats.of(pages), Stats.of(gets)
    return [
        Row(
            f"4. resident memory per idle live session ({sizes.idle_sessions:,}) (KiB)",
            f"{per_session / 1024:.1f}",
            "-",
            "-",
            "<= 20",
        ),
        Row(
            f"4. ListSessions page of 100 over {sizes.stored_sessions:,} stored, p50 (ms)",
            f"{lists.p50:.2f}",
            "-",
            f"p99 {lists.p99:.2f}",
            "<= 10",
        ),
        Row("4. GetSession p50 (ms)", f"{reads.p50:.2f}", "-", f"p99 {reads.p99:.2f}", "<= 1"),
    ]


# Figure 5: start-up and first event.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def startup(work: Path, sizes: Sizes) -> list[Row]:
    colds = []
    for run in range(5):
        port = free_port()
        began = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kodad",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(work / f"cold{run}"),
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            # Short reconnect backoff: gRPC's default (1 s after a refused connect) would
            # measure the client's patience, not the service's start.
            options = [
                ("grpc.initial_reconnect_backoff_ms", 5),
                ("grpc.min_reconnect_backoff_ms", 5),
                ("grpc.max_reconnect_backoff_ms", 20),
            ]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                while True:
                    try:
                        reply = await health.Check(
                            health_pb2.HealthCheckRequest(), timeout=1, wait_for_ready=True
                        )
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.002)
            colds.append(time.perf_counter() - began)
        finally:
            process.terminate()
            process.wait()
    kodad = Kodad(work / "first")
    firsts = []
    try:
        async with grpc.aio.insecure_channel(kodad.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            session = await create(stub, work)
            for _ in range(200):
                call = stub.RunTurn()
                began = time.perf_counter()
                await call.write(start(session))
                first = await call.read()
                firsts.append((time.perf_counter() - began) * 1000)
                assert first.event.WhichOneof("payload") == "turn_started"
                while (response := await call.read()) is not grpc.aio.EOF:
                    if response.event.WhichOneof("payload") == "turn_ended":
                        break
    finally:
        kodad.stop()
    cold, first = Stats.of(colds), Stats.of(firsts)
    return [
        Row(
            "5. cold start to health SERVING, p50 (s)",
            f"{cold.p50:.2f}",
            "-",
            f"max {max(colds):.2f}",
            "<= 1",
        ),
        Row(
            "5. first event after start_turn, p50 (ms)",
            f"{first.p50:.2f}",
            "-",
            f"p99 {first.p99:.2f}",
            "<= 5",
        ),
    ]


# Figure 7: many agents through a real SSE provider, against a bare relay (bench/sse_load.py).


async def many_agents(sizes: Sizes) -> list[Row]:
    relay, kodad = await asyncio.to_thread(
        sse_load.measure, sizes.sse_sessions, sizes.sse_tokens, sizes.sse_rate, 2
    )
    what = (
        f"7. {sizes.sse_sessions:,} sessions x {sizes.sse_tokens} tokens at "
        f"{sizes.sse_rate:g} tok/s via SSE"
    )
    p50s = f"p50 {kodad.latency.p50:.1f} / {relay.latency.p50:.1f}"
    return [
        Row(f"{what}: errors / tokens lost", f"{kodad.errors} / {kodad.lost}",
            f"{relay.errors} / {relay.lost} (relay)", "-", "0 / 0"),
        Row(f"{what}: token -> client p99 (ms)", f"{kodad.latency.p99:.1f}",
            f"{relay.latency.p99:.1f} (relay)", p50s,
            "<= 250, below the relay"),
        Row(f"{what}: first token after start_turn p99 (ms)", f"{kodad.first.p99:.1f}",
            f"{relay.first.p99:.1f} (relay)", f"p50 {kodad.first.p50:.1f}", "<= 250"),
        Row(f"{what}: server CPU per token (us)", f"{kodad.cpu_us_per_token:.0f}",
            f"{relay.cpu_us_per_token:.0f} (relay)", "-", "<= 100"),
    ]  # fmt: skip


def plot(points: list[tuple[int, float, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [p[0] for p in points]
    ax.plot(xs, [p[2] for p in points], marker="o", label="p50")
    ax.plot(xs, [p[3] for p in points], marker="o", label="p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent turns")
    ax.set_ylabel("event latency (ms)")
    ax.set_title("kodad: event latency against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model or platform.processor()}), {memory:.0f} GiB, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}"
    )


def table(rows: list[Row]) -> str:
    header = ["figure", "kodad", "baseline", "ratio / detail", "goal"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {r.figure} | {r.kodad} | {r.baseline} | {r.ratio} | {r.goal} |" for r in rows]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", help="comma-separated figure numbers to run")
    args = parser.parse_args()
    sizes = Sizes()
    if args.quick:
        sizes = Sizes(10_000, 300, 100, 100, 500, 5_000, (1, 10, 100), 100, 50, 20, 20.0, 50)
    chosen = set(args.only.split(",")) if args.only else {"1", "2", "3", "4", "5", "6", "7", "8"}
    rows: list[Row] = []
    points: list[tuple[int, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="kodad-bench-") as tmp:
        work = Path(tmp)
        steps: list[tuple[str, Callable[[Path, Sizes], Awaitable[list[Row]]]]] = [
            ("1", throughput),
            ("2", sse_latency),
            ("3", paced),
            ("4", memory_and_reads),
            ("5", startup),
        ]
        for number, figure in steps:
            if number in chosen:
                print(f"running figure {number} ...", file=sys.stderr, flush=True)
                rows += await figure(work, sizes)
        if "6" in chosen:
            print("running figure 6 ...", file=sys.stderr, flush=True)
            more, points = await scaling(work, sizes)
            rows += more
        if "7" in chosen:
            print("running figure 7 ...", file=sys.stderr, flush=True)
            rows += await many_agents(sizes)
        if "8" in chosen:
            print("running figure 8 ...", file=sys.stderr, flush=True)
            first, last = await long_session(work, sizes.long_session_turns)
            rows.append(
                Row(
                    f"8. turn latency of a {sizes.long_session_turns:,}-turn session, last 10"
                    " vs first 10, p50 (ms)",
                    f"{last.p50:.2f}",
                    f"{first.p50:.2f} (first 10)",
                    f"{last.p50 / first.p50:.2f}",
                    "<= 1.20",
                )
            )
    rendered = table(rows)
    print(rendered)
    if args.quick or args.only:
        return
    plot(points, HERE / "latency.png")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "RESULTS.md").write_text(
        f"# kodad benchmarks\n\nRun {when} on {machine()}.\n"
        "Client and service are separate processes on this machine; baselines run in the same "
        "invocation (`make bench`). The service runs without its per-tenant session and turn "
        "limits (`--max-sessions-per-tenant 0 --max-turns 0 --max-turns-per-tenant 0`): the "
        "figures keep 10,000 sessions and run 1,000 turns at once in one tenant.\n\n"
        f"{rendered}\n\n![event latency against concurrency](latency.png)\n"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())  # the same client loop for kodad and the baselines
