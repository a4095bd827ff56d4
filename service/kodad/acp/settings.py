"""What an editor sets on a session: its mode (kodad's approval modes) and its MCP servers."""

from __future__ import annotations

import os
import re

from acp import RequestError
from acp.schema import (
    AcpMcpServer,
    HttpMcpServer,
    McpServerStdio,
    SessionMode,
    SessionModeState,
    SseMcpServer,
)

from kodad.gen.koda.v1 import session_pb2 as spb

_MODES = (
    ("read-only", "Read only", "Reads and searches; every change is refused",
     spb.APPROVAL_MODE_READ_ONLY),
    ("confirm", "Confirm", "Asks before each change or command that is not read-only",
     spb.APPROVAL_MODE_CONFIRM),
    ("auto", "Auto", "Runs every tool without asking", spb.APPROVAL_MODE_AUTO),
)  # fmt: skip
_MODE_IDS = {mode: mode_id for mode_id, _, _, mode in _MODES}
_SERVER_NAME = re.compile(r"[^A-Za-z0-9-]+")
McpServers = list[HttpMcpServer | SseMcpServer | AcpMcpServer | McpServerStdio] | None
Directories = list[str] | None


def modes(session: spb.Session) -> SessionModeState:
    current = _MODE_IDS.get(session.approval_mode, "confirm")
    return SessionModeState(
        current_mode_id=current,
        available_modes=[SessionMode(id=i, name=n, description=d) for i, n, d, _ in _MODES],
    )


def approval_mode(mode_id: str) -> spb.ApprovalMode.ValueType:
    """The approval mode an ACP mode id names (INVALID_PARAMS for another id)."""
    for known, _, _, mode in _MODES:
        if known == mode_id:
            return mode
    known_ids = ", ".join(m[0] for m in _MODES)
    raise RequestError.invalid_params({"details": f"mode {mode_id!r} is not one of {known_ids}"})


def session_servers(servers: McpServers) -> list[spb.McpServer]:
    """The editor's MCP servers as the session's (untrusted: their tools ask). kodad keeps
    no secret with a session, so a value the editor sets (env, headers) must come from the
    service's environment: the server reads the variable of that name there."""
    out = []
    for server in servers or []:
        name = _SERVER_NAME.sub("-", server.name).strip("-")[:32] or "mcp"
        if isinstance(server, McpServerStdio):
            env_from = {v.name: v.name for v in server.env}
            missing = [v.name for v in server.env if os.environ.get(v.name) != v.value]
            if missing:
                raise RequestError.invalid_params(
                    {
                        "details": f"MCP server {server.name!r}: kodad stores no secrets with a "
                        f"session; set {', '.join(missing)} in the environment of kodad acp "
                        "to the values given"
                    }
                )
            out.append(spb.McpServer(name=name, command=[server.command, *server.args],
                                     env_from=env_from))  # fmt: skip
        elif isinstance(server, HttpMcpServer):
            if server.headers:
                raise RequestError.invalid_params(
                    {
                        "details": f"MCP server {server.name!r}: headers are not supported (kodad "
                        "reads them from its own environment: McpServer.header_env)"
                    }
                )
            out.append(spb.McpServer(name=name, url=server.url))
        else:
            raise RequestError.invalid_params(
                {"details": f"MCP server {server.name!r}: only stdio and http servers"}
            )
    return out
