"""What the sandbox costs a command: `true` started under bubblewrap (as bash runs it, with
the workspace read-only and with it writable) vs started directly, as the bash tool does.

python -m bench.sandbox [runs]     (--quick: a few runs, for `make test`)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kodad.tools.sandbox import Confinement, Sandbox


async def _start(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env)
    code = await process.wait()
    assert code == 0, f"{argv} exited {code}"
    return time.perf_counter() - started


async def measure(runs: int) -> dict[str, list[float]]:
    sandbox = Sandbox.detect()
    if not sandbox.available:
        raise SystemExit(f"no sandbox on this host: {sandbox.info.reason}")
    with tempfile.TemporaryDirectory() as workspace:
        root = Path(workspace)
        env = sandbox.environment("bench")
        cases = {
            "unsandboxed": ["/bin/true"],
            "sandboxed, read-only": sandbox.command(
                ["/bin/true"], workspace=root, confinement=Confinement()
            ),
            "sandboxed, writable": sandbox.command(
                ["/bin/true"], workspace=root, confinement=Confinement(write=True)
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):  # interleaved, so a busy moment hits every case alike
            for name, argv in cases.items():
                times[name].append(await _start(argv, workspace, env))
    return times


def main() -> None:
    quick = "--quick" in sys.argv
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    runs = int(numbers[0]) if numbers else (5 if quick else 200)
    times = asyncio.run(measure(runs))
    base = statistics.median(times["unsandboxed"])
    print(f"starting `true` ({runs} runs each, median / p95):")
    for name, values in times.items():
        values.sort()
        median, p95 = statistics.median(values), values[int(len(values) * 0.95) - 1]
        extra = "" if name == "unsandboxed" else f"  (+{(median - base) * 1000:.2f} ms)"
        print(f"  {name:22} {median * 1000:7.2f} ms / {p95 * 1000:7.2f} ms{extra}")


if __name__ == "__main__":
    main()
