"""The bash tool: runs a command in the workspace, streaming its output."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import signal
from typing import Any, ClassVar

from kodad import bash
from kodad.domain.model import ApprovalRisk
from kodad.tools.base import (
    ApprovalScope,
    Args,
    BuiltinTool,
    Description,
    ToolContext,
    ToolKind,
    ToolOutcome,
)
from kodad.tools.errors import ToolError
from kodad.tools.sandbox import TURN_VARIABLE, Sandbox
from kodad.tools.workspace import Workspace

DEFAULT_TIMEOUT_S = 120
MAX_TIMEOUT_S = 3600
# Variables the agent's commands never see: the service's credentials.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)


def command_env(turn_id: str = "") -> dict[str, str]:
    """The service's environment without anything that looks like a secret, marked with
    the turn that runs the command (so a restarted service can find what it left behind):
    what an unconfined command gets (FULL_ACCESS, or a host without a sandbox)."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}
    env["TERM"] = "dumb"
    if turn_id:
        env[TURN_VARIABLE] = turn_id
    return env


def processes_of(turn_ids: set[str]) -> list[int]:
    """The processes started for these turns, found by their KODAD_TURN_ID."""
    return processes_with({f"{TURN_VARIABLE}={t}" for t in turn_ids})


def processes_with(variables: set[str]) -> list[int]:
    """The host's processes whose environment holds one of `variables` ("NAME=value")."""
    marks = {v.encode() for v in variables}
    found = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                found_variables = f.read().split(b"\0")
        except OSError:
            continue
        if not marks.isdisjoint(found_variables):
            found.append(int(entry.name))
    return found


def kill_orphans(turn_ids: set[str]) -> int:
    """Kills the process groups of commands that interrupted turns left running (after the
    service was killed). Finds them by their KODAD_TURN_ID; returns how many it killed."""
    if not turn_ids:
        return 0
    killed = 0
    for pid in processes_of(turn_ids):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
        killed += 1
    return killed


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class Bash(BuiltinTool):
    """Runs `bash -c` in the session's sandbox, confined as the call's ToolContext says."""

    name: ClassVar[str] = "bash"
    kind: ClassVar[ToolKind] = ToolKind.SHELL
    description: ClassVar[str] = (
        "Run a bash command in the workspace root; stdout and stderr are merged. "
        f"`timeout_s` (default {DEFAULT_TIMEOUT_S}) kills the command and its children."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command line for bash -c."},
            "timeout_s": {"type": "integer", "description": "Seconds before it is killed."},
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self._sandbox = sandbox or Sandbox(None)

    @staticmethod
    def _arguments(args: Args) -> tuple[str, int]:
        command = args.string("command")
        timeout_s = args.integer("timeout_s", DEFAULT_TIMEOUT_S)
        if not command.strip():
            raise ToolError("command must not be empty")
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise ToolError(f"timeout_s must be between 1 and {MAX_TIMEOUT_S}")
        return command, timeout_s

    def describe(self, args: Args, workspace: Workspace) -> Description:
        command, timeout_s = self._arguments(args)
        first_line = command.strip().splitlines()[0]
        more = " …" if "\n" in command.strip() else ""
        return Description(
            f"Run {first_line}{more}",
            f"$ {command}\n(cwd: {workspace.root}, timeout {timeout_s} s)",
        )

    async def needs_approval(self, args: Args, scope: ApprovalScope) -> ApprovalRisk | None:
        """A command the classifier reads as only reading runs unasked (confined to reading
        whatever it really does); a destructive one asks at HIGH risk."""
        match bash.classify(args.string("command", "")):
            case bash.CommandClass.READ_ONLY:
                return None
            case bash.CommandClass.DESTRUCTIVE:
                return ApprovalRisk.HIGH
            case _:
                return ApprovalRisk.NORMAL

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        command, timeout_s = self._arguments(args)
        confinement = ctx.confinement
        argv = self._sandbox.command(
            ["/bin/bash", "-c", command], workspace=ctx.workspace.root, confinement=confinement
        )
        confined = self._sandbox.confines(confinement)
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ctx.workspace.root,
            env=self._sandbox.environment(ctx.turn_id) if confined else command_env(ctx.turn_id),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can kill all of it
        )
        assert process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        kept: list[str] = []
        kept_size = 0
        total = 0
        timed_out = False

        async def take(chunk: str) -> None:
            nonlocal kept_size, total
            if not chunk:
                return
            ctx.stream(chunk)
            await ctx.drain()  # a flood of output waits for the event log, memory stays bounded
            total += len(chunk)
            if kept_size < ctx.output_limit:
                kept.append(chunk[: ctx.output_limit - kept_size])
                kept_size += len(kept[-1])

        try:
            async with asyncio.timeout(timeout_s):
                while data := await process.stdout.read(65536):
                    await take(decoder.decode(data))
                await take(decoder.decode(b"", final=True))
                await process.wait()
        except TimeoutError:
            timed_out = True
        finally:
            # Also ends what the command left running in the background: no orphans.
            _kill_group(process)
            if process.returncode is None:
                # Reap it even when we are being cancelled, so no zombie is left.
                await asyncio.shield(process.wait())
        ctx.end_stream()
        output = "".join(kept)
        truncated = total > ctx.output_limit
        if timed_out:
            return ToolOutcome(
                f"{output}\n[killed after {timeout_s} s timeout]",
                is_error=True,
                truncated=truncated,
            )
        code = process.returncode
        if code:
            return ToolOutcome(f"{output}\n[exit code {code}]", is_error=True, truncated=truncated)
        return ToolOutcome(output, truncated=truncated)
