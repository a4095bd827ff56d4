"""One server per address and per data dir: a second `kodad serve` exits at once, non-zero,
saying why, and the first goes on serving."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc

from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.kodad_process import KodadProcess


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kodad", "serve", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def still_serves(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        info = await pb_grpc.SessionServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest())
        assert info.version


async def test_a_second_server_on_a_used_port_exits_at_once(tmp_path: Path) -> None:
    first = KodadProcess(tmp_path / "one")
    try:
        second = serve("--listen", first.address, "--data-dir", str(tmp_path / "two"))
        assert second.returncode == 1
        assert f"cannot listen on {first.address}: address already in use" in second.stderr
        await still_serves(first.address)
    finally:
        first.close()


async def test_a_second_server_on_the_same_data_dir_exits_without_touching_it(
    tmp_path: Path,
) -> None:
    first = KodadProcess(tmp_path / "data")
    try:
        second = serve("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"))
        assert second.returncode == 1
        assert "is in use by another kodad (pid" in second.stderr
        await still_serves(first.address)
    finally:
        first.close()


async def test_a_live_unix_socket_is_kept_and_a_stale_one_replaced(tmp_path: Path) -> None:
    path = tmp_path / "kodad.sock"
    first = KodadProcess(tmp_path / "one", "--listen", f"unix://{path}")
    try:
        second = serve("--listen", f"unix://{path}", "--data-dir", str(tmp_path / "two"))
        assert second.returncode == 1 and "address already in use" in second.stderr
        await still_serves(f"unix://{path}")
    finally:
        first.close()
    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))  # a socket file nobody listens on
    leftover.close()
    third = KodadProcess(tmp_path / "three", "--listen", f"unix://{stale}")
    try:
        await still_serves(f"unix://{stale}")
    finally:
        third.close()
