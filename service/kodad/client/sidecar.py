"""Running kodad as a child process of the application: `spawn_sidecar()`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from kodad.client.connection import Client


class SidecarError(Exception):
    """The kodad binary is missing, failed to start, or was not ready in time; the message
    ends with the tail of its stderr."""


@dataclass
class _Sidecar:
    process: asyncio.subprocess.Process
    stderr: deque[str]
    reader: asyncio.Task[None]

    async def stop(self, grace_s: float = 10.0) -> None:
        """Closes the child's stdin (it drains and exits), then kills it if it lingers."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace_s)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.reader.cancel()

    def tail(self) -> str:
        return "".join(self.stderr).strip() or "(no output)"


async def spawn_sidecar(
    *,
    command: Sequence[str] | None = None,
    listen: str = "127.0.0.1:0",
    args: Sequence[str] = (),
    ready_within_s: float = 10.0,
) -> Client:
    """Starts `kodad serve` as a child process owned by the returned Client: on `listen`
    (default a free loopback port; `unix:///path` for a socket), with a per-launch token, tied
    to this process (it exits when the client closes, or when this process dies). `command`
    is the kodad executable and leading arguments (default: `kodad` on PATH, or KODAD_BIN)."""
    if command is None:
        found = os.environ.get("KODAD_BIN") or shutil.which("kodad")
        if found is None:
            raise SidecarError("cannot find the kodad binary: not on PATH and KODAD_BIN unset")
        command = [found]
    argv = [*command, "serve", "--listen", listen, "--ready-json", "--launch-token",
            "--exit-with-parent", *args]  # fmt: skip
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise SidecarError(f"cannot start {argv[0]}: {e.strerror or e}") from e
    assert process.stdout is not None and process.stderr is not None
    stderr: deque[str] = deque(maxlen=20)

    async def read_stderr(stream: asyncio.StreamReader) -> None:
        async for line in stream:
            stderr.append(line.decode(errors="replace"))

    sidecar = _Sidecar(process, stderr, asyncio.create_task(read_stderr(process.stderr)))
    try:
        line = await asyncio.wait_for(process.stdout.readline(), ready_within_s)
        ready = json.loads(line) if line else None
    except (TimeoutError, ValueError) as e:
        await sidecar.stop(grace_s=1.0)
        why = "was not ready" if isinstance(e, TimeoutError) else "printed no ready line"
        raise SidecarError(f"kodad {why} within {ready_within_s} s: {sidecar.tail()}") from e
    if ready is None:
        code = await process.wait()
        await asyncio.wait_for(sidecar.reader, 5)
        raise SidecarError(f"kodad exited with code {code} before it was ready: {sidecar.tail()}")
    client = Client(str(ready["address"]), token=str(ready["token"]))
    client.own(sidecar)
    return client
