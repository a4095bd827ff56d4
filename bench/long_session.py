"""Figure 8: a long session's turns cost what its first turns cost. One session runs N turns
one after another (the default scripted provider, a short answer each); the latency of a
turn (start_turn sent to turn_ended received) of the last ten against the first ten."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from bench.harness import Kodad, Stats
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

WINDOW = 10
COMPLETED = epb.TURN_END_REASON_COMPLETED


async def turn_latencies(address: str, workspace: Path, turns: int) -> list[float]:
    """The latency (ms) of each of `turns` turns of one session, in order."""
    # The service's default provider: a short scripted answer to every turn.
    session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
    latencies = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        made = await stub.CreateSession(pb.CreateSessionRequest(session=session))
        start = epb.StartTurn(session_id=made.session.id, text="go on")
        for _ in range(turns):
            began = time.perf_counter()
            call = stub.RunTurn()
            await call.write(pb.RunTurnRequest(command=epb.EngineCommand(start_turn=start)))
            await call.done_writing()
            async for response in call:
                ended = response.event.turn_ended
                if response.event.HasField("turn_ended") and ended.reason != COMPLETED:
                    raise RuntimeError(f"turn ended {ended}")
            latencies.append((time.perf_counter() - began) * 1000)
    return latencies


async def long_session(work: Path, turns: int) -> tuple[Stats, Stats]:
    """(first WINDOW turns, last WINDOW turns) of a session of `turns` turns."""
    kodad = Kodad(work / "long-session")
    try:
        workspace = work / "workspace"
        workspace.mkdir(exist_ok=True)
        latencies = await turn_latencies(kodad.address, workspace, turns)
    finally:
        kodad.stop()
    return Stats.of(latencies[:WINDOW]), Stats.of(latencies[-WINDOW:])
