"""Shared pieces of the benchmarks: kodad as a child process, timing statistics, and
process readings (CPU time, resident memory) from /proc."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The service's limits the benchmarks lift: they keep 10,000 sessions and run 1,000 turns at
# once in one tenant (the defaults stop a tenant at 10,000 sessions and 64 turns).
BENCH_LIMITS = ("--max-sessions-per-tenant", "0", "--max-turns", "0", "--max-turns-per-tenant", "0")


class Kodad:
    """`python -m kodad serve` on a free loopback port, with BENCH_LIMITS."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kodad",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                *BENCH_LIMITS,
                *extra,
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if match := re.search(r"serving on (\S+)", line):
                self.address = match.group(1)
                break
        else:
            raise RuntimeError(f"kodad exited with {self.process.wait()}")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass(frozen=True)
class Stats:
    p50: float
    p99: float
    mean: float
    count: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        ordered = sorted(values)
        if not ordered:
            return cls(0.0, 0.0, 0.0, 0)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(statistics.median(ordered), p99, statistics.fmean(ordered), len(ordered))


class Child:
    """A helper process (`python -m bench.baselines ...`) that prints its port first."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.baselines", *args], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


async def serve_bytes(
    service: str, handler: grpc.RpcMethodHandler, announce: Callable[[int], object]
) -> None:
    """Serves one raw-bytes method, `/{service}/Stream`, on a free loopback port (the bare
    transports the baselines measure); `announce` gets the port."""
    generic = grpc.method_handlers_generic_handler(service, {"Stream": handler})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((generic,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    announce(port)
    await server.wait_for_termination()
