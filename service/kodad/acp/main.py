"""Runs the ACP agent on stdin/stdout against a kodad service."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from acp import run_agent

from kodad.acp.agent import KodadAgent
from kodad.client import Client, SidecarError, spawn_sidecar


async def serve_acp(connect: str | None, token: str | None, sidecar_args: Sequence[str]) -> int:
    """Speaks ACP until stdin closes. Without `connect` it starts `kodad serve` as its own
    sidecar (KODAD_BIN, else the running kodad), which stops when this returns."""
    if connect:
        kodad = Client(connect, token=token)
    else:
        command = [os.environ["KODAD_BIN"]] if os.environ.get("KODAD_BIN") else None
        if command is None:
            command = [sys.executable, "-m", "kodad"]
        try:
            kodad = await spawn_sidecar(command=command, args=sidecar_args)
        except SidecarError as e:
            logging.getLogger("kodad").error("kodad acp: %s", e)
            return 1
    async with kodad:
        await run_agent(KodadAgent(kodad), use_unstable_protocol=True)
    return 0


def main(connect: str | None, token: str | None, sidecar_args: Sequence[str]) -> int:
    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(serve_acp(connect, token, sidecar_args))
