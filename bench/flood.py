"""`python -m bench.flood`: the service under a flood of output, and everyone else meanwhile.

Two floods, one after the other, each read by a fast reader (the turn's own stream) and a
stalled one (a WatchSession that reads nothing until the flood is over), while a second
session runs echo turns one after the other:
1. a scripted turn of 1,000,000 text deltas;
2. a command that prints without end (`yes`) for 5 s.
Figures (printed, nothing asserted): the server's peak RSS over the idle server, the events
and characters stored for the flood (for the command: the characters stored per call
against the stream limit), the other session's echo turn p50/p99 during the flood, and
whether a replay of the flooding session is complete and gap-free.

python -m bench.flood [--quick]     (--quick: 100,000 deltas and 1 s, for `make test`)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.harness import Kodad, Stats, rss_bytes
from bench.run import create, run_turn, scripted
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

STREAM_LIMIT = 1024 * 1024 + 64 * 1024  # what one call's output may store (kodad's default)
MAX_REPEAT = 100_000  # the scripted provider's bound per entry
ECHO_ROUNDS = 20_000  # echo turns a session can run


@dataclass
class Flood:
    name: str
    peak_rss_growth: int
    stored_events: int
    stored_chars: int
    expected_chars: int | None
    echo: Stats
    gap_free: bool
    seconds: float


async def _sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_bytes(pid))
        await asyncio.sleep(0.02)


async def _echo_turns(
    stub: pb_grpc.SessionServiceStub, session_id: str, stop: asyncio.Event
) -> list[float]:
    times = []
    while not stop.is_set():
        started = time.perf_counter()
        await run_turn(stub, session_id)
        times.append(time.perf_counter() - started)
    return times


async def _replay(stub: pb_grpc.SessionServiceStub, session_id: str) -> tuple[list[int], int, int]:
    """The seqs of a replay of the session up to its last turn_ended, with the characters of
    its text deltas and of its command output."""
    seqs, text, output = [], 0, 0
    last = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session.last_seq
    async for response in stub.WatchSession(pb.WatchSessionRequest(session_id=session_id)):
        event = response.event
        seqs.append(event.seq)
        text += len(event.text_delta.text)
        output += len(event.tool_call_output.chunk)
        if event.seq >= last:
            break
    return seqs, text, output


async def flood(
    kodad: Kodad,
    workspace: Path,
    name: str,
    provider_rounds: list[list[dict[str, object]]],
    expected_text: int,
) -> Flood:
    async with grpc.aio.insecure_channel(kodad.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        echo = await create(stub, workspace, scripted(*[[{"text": "e"}]] * ECHO_ROUNDS))
        await run_turn(stub, echo)  # warm
        idle = rss_bytes(kodad.pid)
        flooding = await create(stub, workspace, scripted(*provider_rounds))
        stalled = stub.WatchSession(pb.WatchSessionRequest(session_id=flooding))
        peak, stop = [idle], asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(kodad.pid, peak, stop))
        echoes = asyncio.create_task(_echo_turns(stub, echo, stop))
        started = time.perf_counter()
        await run_turn(stub, flooding)  # the fast reader reads it all
        seconds = time.perf_counter() - started
        stop.set()
        echo_times = await echoes
        await sampler
        stalled.cancel()  # it read nothing: the server kept it bounded
        seqs, text, output = await _replay(stub, flooding)
    gap_free = seqs == list(range(1, len(seqs) + 1))
    stored_chars = text if expected_text else output
    return Flood(
        name,
        peak[0] - idle,
        len(seqs),
        stored_chars,
        expected_text or None,
        Stats.of(echo_times),
        gap_free and (not expected_text or text == expected_text),
        seconds,
    )


def _deltas(count: int) -> list[list[dict[str, object]]]:
    entries: list[dict[str, object]] = []
    while count > 0:
        entries.append({"repeat": min(count, MAX_REPEAT), "text": "tok "})
        count -= MAX_REPEAT
    return [entries]


def _command(seconds: float) -> list[list[dict[str, object]]]:
    call = {"name": "bash", "id": "yes", "arguments": {"command": f"timeout {seconds:g} yes"}}
    return [[{"tool_call": call}], [{"text": "done"}]]


async def main(quick: bool) -> None:
    deltas, seconds = (100_000, 1.0) if quick else (1_000_000, 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = root / "ws"
        workspace.mkdir()
        kodad = Kodad(root / "data")
        try:
            results = [
                await flood(
                    kodad, workspace, f"{deltas:,} text deltas", _deltas(deltas), 4 * deltas
                ),
                await flood(kodad, workspace, f"`yes` for {seconds:g} s", _command(seconds), 0),
            ]
        finally:
            kodad.stop()
    print("floods, read by the turn's stream and by a WatchSession that reads nothing:")
    for r in results:
        if r.expected_chars:
            stored = f"{r.stored_chars:,} of {r.expected_chars:,} characters"
        else:
            stored = f"{r.stored_chars:,} characters stored (limit {STREAM_LIMIT:,})"
        print(
            f"  {r.name}: {r.seconds:.1f} s; peak RSS +{r.peak_rss_growth / 2**20:.1f} MiB; "
            f"{r.stored_events:,} events, {stored}; replay "
            f"{'complete and gap-free' if r.gap_free else 'INCOMPLETE'}"
        )
        print(
            f"    meanwhile {r.echo.count} echo turns of another session: "
            f"p50 {r.echo.p50 * 1000:.1f} ms, p99 {r.echo.p99 * 1000:.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
