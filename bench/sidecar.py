"""Sidecar start-up and shutdown: exec -> ready line, and parent SIGKILL -> kodad gone.

python -m bench.sidecar [runs]
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

KODAD = [sys.executable, "-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--ready-json",
         "--launch-token", "--exit-with-parent"]  # fmt: skip
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sys.stdout.buffer.write(child.stdout.readline())
    sys.stdout.flush()
    child.wait()
    """
)


def ready_latency(data_dir: str) -> float:
    started = time.perf_counter()
    child = subprocess.Popen([*KODAD, "--data-dir", data_dir], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    json.loads(child.stdout.readline())
    elapsed = time.perf_counter() - started
    child.stdin.close()
    child.wait(timeout=30)
    return elapsed


def parent_death_latency(data_dir: str) -> float:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *KODAD, "--data-dir", data_dir],
                              stdout=subprocess.PIPE)  # fmt: skip
    assert parent.stdout is not None
    pid = json.loads(parent.stdout.readline())["pid"]
    kodad = os.pidfd_open(pid)
    started = time.perf_counter()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    select.select([kodad], [], [], 30)
    os.close(kodad)
    return time.perf_counter() - started


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as data_dir:
        ready = [ready_latency(data_dir) for _ in range(runs)]
        death = [parent_death_latency(data_dir) for _ in range(runs)]
    for name, values in (("exec -> ready line", ready), ("parent SIGKILL -> exit", death)):
        print(f"{name:24} median {statistics.median(values) * 1000:7.1f} ms   "
              f"max {max(values) * 1000:7.1f} ms   ({runs} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
