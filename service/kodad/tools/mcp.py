"""MCP servers' tools, through the official `mcp` SDK: stdio commands and streamable-HTTP URLs.

A session's servers live in its McpHub: each starts when a turn first needs it (its own task
holds the SDK client open), stays up for the session's next turns, starts again after it
stopped or crashed, and closes with the session. Their tools reach the model as
`<server>__<tool>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kodad import __version__
from kodad.domain.model import ApprovalRisk, McpServerSpec, SandboxPolicy, SandboxSettings
from kodad.tools.base import ApprovalScope, Args, Description, ToolContext, ToolKind, ToolOutcome
from kodad.tools.errors import ToolError
from kodad.tools.sandbox import Confinement, Sandbox
from kodad.tools.workspace import Workspace

if TYPE_CHECKING:
    from mcp import Client

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
MAX_TOOL_NAME = 64  # what the providers accept
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """`<server>__<tool>`, with characters the providers refuse replaced."""
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:MAX_TOOL_NAME]


async def _load_sdk() -> None:
    """Imports the SDK (about a second of imports) in a thread, the first time a server is
    needed, so the event loop keeps serving the other sessions meanwhile."""
    for module in ("mcp.client.stdio", "mcp.client.streamable_http"):
        await asyncio.to_thread(importlib.import_module, module)


def _reason(error: BaseException) -> str:
    """The innermost cause of an SDK failure, in one line (task groups wrap them)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


class McpConnection:
    """One server of a session; `client()` starts it when it is not running."""

    def __init__(
        self, spec: McpServerSpec, workspace: str, sandbox: Sandbox, settings: SandboxSettings
    ) -> None:
        self.spec = spec
        self._workspace = workspace
        self._sandbox = sandbox
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Client] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self.starts = 0  # how many times it was started

    def _from_host(self, mapping: tuple[tuple[str, str], ...]) -> dict[str, str]:
        """`mapping`'s names with the values of the host variables they name."""
        values = {}
        for name, variable in mapping:
            value = os.environ.get(variable)
            if value is None:
                raise ToolError(
                    f"MCP server {self.spec.name!r} needs the environment variable "
                    f"{variable} of the service, which is not set"
                )
            values[name] = value
        return values

    async def _target(self, stack: contextlib.AsyncExitStack) -> Any:
        """What the SDK client connects to: a streamable-HTTP transport (its HTTP client
        closed with `stack`) or a command."""
        if self.spec.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = self._from_host(self.spec.header_env)
            timeout = httpx2.Timeout(30.0, read=300.0)
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, timeout=timeout)
            )
            return streamable_http_client(self.spec.url, http_client=http)
        from mcp.client.stdio import StdioServerParameters, get_default_environment

        # In the sandbox, with the session's policy: its tools ask (unless trusted) before
        # each call, not each write, so a server cannot be confined per call.
        settings = self.settings
        confinement = Confinement(
            write=settings.policy is not SandboxPolicy.READ_ONLY, network=settings.network
        )
        argv = self._sandbox.command(
            list(self.spec.command), workspace=Path(self._workspace), confinement=confinement
        )
        extra = self._from_host(self.spec.env_from)
        confined = self._sandbox.confines(confinement)
        env = (
            self._sandbox.environment("", extra)
            if confined
            else {**get_default_environment(), **extra}
        )
        program, *args = argv
        return StdioServerParameters(command=program, args=args, cwd=self._workspace, env=env)

    async def client(self) -> Client:
        await _load_sdk()
        async with self._lock:
            if self._task is None or self._task.done():
                self._stop = asyncio.Event()
                self._ready = asyncio.get_running_loop().create_future()
                self.starts += 1
                self._task = asyncio.create_task(
                    self._run(self._ready, self._stop), name=f"mcp {self.spec.name}"
                )
            ready, task = self._ready, self._task
        assert ready is not None
        try:
            return await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
        except TimeoutError:
            task.cancel()
            raise ToolError(
                f"MCP server {self.spec.name!r} did not start within {START_TIMEOUT_S:g} s"
            ) from None

    async def _run(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        """Holds the SDK client open (its task group lives in this task) until stopped."""
        from mcp import Client
        from mcp_types import Implementation

        try:
            info = Implementation(name="kodad", version=__version__)
            async with contextlib.AsyncExitStack() as stack:
                target = await self._target(stack)
                client = await stack.enter_async_context(Client(target, client_info=info))
                ready.set_result(client)
                await stop.wait()
        except BaseException as e:
            reason = _reason(e)
            if not ready.done():
                ready.set_exception(
                    e
                    if isinstance(e, ToolError)
                    else ToolError(f"MCP server {self.spec.name!r} could not start: {reason}")
                )
            elif not stop.is_set():
                log.warning("MCP server %s stopped: %s", self.spec.name, reason)
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            if not ready.done():
                ready.set_exception(ToolError(f"MCP server {self.spec.name!r} stopped"))

    async def reset(self) -> None:
        """Stops the server; the next use starts it again."""
        task = self._task
        self._stop.set()
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
            if not done:
                task.cancel()
                await asyncio.wait({task})

    async def tools(self) -> list[McpTool]:
        client = await self.client()
        try:
            found = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                found += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
        except Exception as e:
            await self.reset()
            raise ToolError(f"MCP server {self.spec.name!r} failed: {_reason(e)}") from None
        return [
            McpTool(self, t.name, t.description or "", t.input_schema, t.annotations) for t in found
        ]

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        client = await self.client()
        try:
            result = await client.call_tool(tool, arguments)
        except Exception as e:
            await self.reset()
            raise ToolError(
                f"MCP server {self.spec.name!r} failed: {_reason(e)}; it starts again at the "
                "next call"
            ) from None
        parts: list[str] = []
        for block in result.content:
            text = getattr(block, "text", None)
            if isinstance(text, str):
                parts.append(text)
            elif (resource := getattr(block, "resource", None)) is not None:
                parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
            else:
                parts.append(f"[{block.type} content]")
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        return ToolOutcome("\n".join(parts), is_error=bool(result.is_error))


class McpTool:
    """A tool of an MCP server, as the model sees it: `<server>__<tool>`."""

    def __init__(
        self,
        connection: McpConnection,
        remote_name: str,
        description: str,
        schema: dict[str, Any],
        annotations: Any,
    ) -> None:
        spec = connection.spec
        self.connection = connection
        self.remote_name = remote_name
        self.name = tool_name(spec.name, remote_name)
        self.description = description or f"{remote_name!r} of the MCP server {spec.name!r}"
        self.parameters = schema or {"type": "object", "properties": {}}
        read_only = bool(getattr(annotations, "read_only_hint", False))
        # A trusted server's read-only tools count as reading; everything else as changing.
        self.kind = ToolKind.READ_ONLY if spec.trusted and read_only else ToolKind.MUTATING
        self.trusted = spec.trusted

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        outcome = await self.connection.call(self.remote_name, args.values())
        return dataclasses.replace(ctx.cap(outcome.output), is_error=outcome.is_error)

    async def needs_approval(self, args: Args, scope: ApprovalScope) -> ApprovalRisk | None:
        """A trusted server's calls run unasked (confined as any unasked call)."""
        return None if self.trusted else ApprovalRisk.UNSPECIFIED

    def describe(self, args: Args, workspace: Workspace) -> Description:
        arguments = json.dumps(args.values(), ensure_ascii=False, indent=2)
        spec = self.connection.spec
        where = spec.url or " ".join(spec.command)
        return Description(
            f"Call {self.remote_name!r} of the MCP server {spec.name!r} ({where})", arguments
        )


class McpHub:
    """The MCP servers of one session, by name."""

    def __init__(self, workspace: str, sandbox: Sandbox, settings: SandboxSettings) -> None:
        self._workspace = workspace
        self._sandbox = sandbox
        self.settings = settings
        self._servers: dict[str, McpConnection] = {}
        # Servers a workspace declares that a human approved starting, for this session.
        self.approved: set[McpServerSpec] = set()

    def connection(self, name: str) -> McpConnection | None:
        return self._servers.get(name)

    async def tools(self, specs: Sequence[McpServerSpec]) -> tuple[list[McpTool], list[str]]:
        """The tools of every server in `specs`, started as needed (together), and what went
        wrong with those that could not give theirs."""
        for spec in specs:
            known = self._servers.get(spec.name)
            if known is not None and (known.spec != spec or known.settings != self.settings):
                # reconfigured: start it anew
                await known.reset()
                known = None
            if known is None:
                self._servers[spec.name] = McpConnection(
                    spec, self._workspace, self._sandbox, self.settings
                )
        connections = [self._servers[s.name] for s in specs]
        results = await asyncio.gather(*(c.tools() for c in connections), return_exceptions=True)
        tools: list[McpTool] = []
        problems: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                problems.append(f"{result}; its tools are left out of this turn")
            else:
                tools += result
        return tools, problems

    async def aclose(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        with contextlib.suppress(Exception):
            await asyncio.gather(*(s.reset() for s in servers))
