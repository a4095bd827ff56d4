"""`python -m bench.replicas`: kodad on PostgreSQL next to kodad on SQLite, and failover.

Figures (printed, nothing asserted):
1. turn latency and rate of short turns, one client after the other, on SQLite and on
   PostgreSQL (one replica);
2. turns per second with 60 sessions driven concurrently through 1 and through 3 replicas on
   one PostgreSQL database (each turn on the replica that received it);
3. failover: SIGKILL of the replica running a turn -> turn_ended{owner_lost} seen on
   another replica, for a lease of 2 s.
Needs PostgreSQL's server programs (tools/postgres.sh installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc

from bench.harness import Kodad, Stats
from bench.run import create, run_turn, scripted, start
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.pg import PostgresCluster

LEASE_S = 2.0


def short_turn() -> spb.ProviderConfig:
    """The offline echo provider: a turn's writes (input, answer, events), no model time."""
    return spb.ProviderConfig(kind=spb.PROVIDER_KIND_SCRIPTED)


async def sequential(address: str, workspace: Path, turns: int) -> Stats:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        session = await create(stub, workspace, short_turn())
        times = []
        for _ in range(turns):
            began = time.perf_counter()
            await run_turn(stub, session)
            times.append((time.perf_counter() - began) * 1000)
    return Stats.of(times)


async def concurrent(addresses: list[str], workspace: Path, sessions: int, turns: int) -> float:
    """Turns per second with `sessions` clients, each on the replica of its index."""
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [pb_grpc.SessionServiceStub(c) for c in channels]
    try:
        ids = [
            await create(stubs[i % len(stubs)], workspace, short_turn()) for i in range(sessions)
        ]

        async def client(i: int) -> None:
            for _ in range(turns):
                await run_turn(stubs[i % len(stubs)], ids[i])

        began = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(sessions)))
        return sessions * turns / (time.perf_counter() - began)
    finally:
        for channel in channels:
            await channel.close()


async def failover(dsn: str, work: Path, workspace: Path, runs: int) -> Stats:
    times: list[float] = []
    for run in range(runs):
        owner = Kodad(work / f"f{run}a", "--store", dsn, "--lease-ttl", str(LEASE_S))
        other = Kodad(work / f"f{run}b", "--store", dsn, "--lease-ttl", str(LEASE_S))
        try:
            async with (
                grpc.aio.insecure_channel(owner.address) as a,
                grpc.aio.insecure_channel(other.address) as b,
            ):
                stub_a, stub_b = pb_grpc.SessionServiceStub(a), pb_grpc.SessionServiceStub(b)
                slow = scripted([{"text": "wait"}, {"delay_ms": 600_000}])
                session = await create(stub_a, workspace, slow)
                call = stub_a.RunTurn()
                await call.write(start(session))
                async for response in call:
                    if response.event.HasField("text_delta"):
                        break
                watch = stub_b.WatchSession(pb.WatchSessionRequest(session_id=session))
                killed = time.perf_counter()
                owner.process.kill()
                async for response in watch:
                    if response.event.HasField("turn_ended"):
                        assert response.event.turn_ended.error_code == "owner_lost"
                        break
                times.append((time.perf_counter() - killed) * 1000)
                watch.cancel()
        finally:
            owner.process.wait()
            other.stop()
    return Stats.of(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200, help="sequential turns per store")
    parser.add_argument("--failovers", type=int, default=5)
    args = parser.parse_args()
    cluster = PostgresCluster()
    cluster.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kodad-bench-") as tmp:
            work = Path(tmp)
            workspace = work / "ws"
            workspace.mkdir()
            print(f"{'figure':58} {'result'}")
            sqlite = Kodad(work / "sqlite")
            try:
                s = await sequential(sqlite.address, workspace, args.turns)
                sqlite_rate = await concurrent([sqlite.address], workspace, 60, 5)
            finally:
                sqlite.stop()
            print(f"{'1. sequential turn, SQLite: p50 / p99 ms, turns/s':58} "
                  f"{s.p50:.1f} / {s.p99:.1f}, {1000 / s.mean:.0f}")  # fmt: skip
            dsn = await cluster.new_database()
            replicas = [Kodad(work / f"r{i}", "--store", dsn) for i in range(3)]
            try:
                p = await sequential(replicas[0].address, workspace, args.turns)
                print(f"{'1. sequential turn, PostgreSQL: p50 / p99 ms, turns/s':58} "
                      f"{p.p50:.1f} / {p.p99:.1f}, {1000 / p.mean:.0f}")  # fmt: skip
                one = await concurrent([replicas[0].address], workspace, 60, 5)
                three = await concurrent([r.address for r in replicas], workspace, 60, 5)
                label = "2. 60 concurrent sessions: turns/s"
                print(f"{label + ', SQLite':58} {sqlite_rate:.0f}")
                print(f"{label + ', PostgreSQL, 1 replica':58} {one:.0f}")
                print(f"{label + ', PostgreSQL, 3 replicas':58} {three:.0f}")
            finally:
                for replica in replicas:
                    replica.stop()
            f = await failover(await cluster.new_database(), work, workspace, args.failovers)
            print(f"{'3. SIGKILL -> owner_lost elsewhere, lease 2 s: median / max ms':58} "
                  f"{f.p50:.0f} / {f.p99:.0f}")  # fmt: skip
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
