"""`python -m bench.checkpoints`: what a workspace checkpoint costs when one file changed.

Builds a workspace of 10,000 files (200 MB in all, in 100 directories; files older than the
"just changed" window, as in a real checkout), captures it once (the first capture reads
everything), then repeatedly changes one file and captures again. Figures (printed, nothing
asserted): the first capture's time and storage, then per capture after one change the median
and p95 time and the storage added (goal: at most 50 ms, and storage in proportion to the
change, not to the workspace).

python -m bench.checkpoints [--quick]     (--quick: 1,000 files, 20 MB, for `make test`)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from kodad.engine.snapshots import Limits, ObjectStore, WorkspaceSnapshots


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def build(root: Path, files: int, total_bytes: int) -> None:
    per_file = total_bytes // files
    old = time.time() - 3600
    for i in range(files):
        directory = root / f"d{i % 100:02d}"
        directory.mkdir(exist_ok=True)
        path = directory / f"f{i:05d}.txt"
        path.write_bytes(os.urandom(per_file // 2).hex().encode()[:per_file])
        os.utime(path, (old, old))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    files, total = (1_000, 20 * 1024 * 1024) if args.quick else (10_000, 200 * 1024 * 1024)
    rounds = 10 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        ws, store_dir = Path(tmp) / "ws", Path(tmp) / "store"
        ws.mkdir()
        build(ws, files, total)
        snaps = WorkspaceSnapshots(ObjectStore(store_dir), ws, Limits())
        start = time.perf_counter()
        snaps.capture()
        first_s = time.perf_counter() - start
        first_bytes = _size(store_dir)
        times, added = [], []
        for i in range(rounds):
            target = ws / f"d{i % 100:02d}" / f"f{i:05d}.txt"
            target.write_bytes(f"changed {i}\n".encode())
            before = _size(store_dir)
            start = time.perf_counter()
            snaps.capture()
            times.append((time.perf_counter() - start) * 1000)
            added.append(_size(store_dir) - before)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(f"workspace: {files:,} files, {total / 2**20:.0f} MB")
        print(f"first capture: {first_s:.2f} s, {first_bytes / 2**20:.1f} MB stored")
        print(
            f"capture after one change: median {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms (goal <= 50 ms); storage added median "
            f"{statistics.median(added) / 1024:.1f} KiB"
        )


if __name__ == "__main__":
    main()
