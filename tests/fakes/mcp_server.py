"""A small MCP server written with the official SDK, for the MCP tool tests.

`python mcp_server.py` speaks MCP over stdio; `python mcp_server.py http` serves streamable
HTTP on a free loopback port and prints the port as its first line.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

app = MCPServer("kodad-test")


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> str:
    """Adds two integers."""
    return str(a + b)


@app.tool()
def write_note(name: str, text: str) -> str:
    """Writes a note file in the current directory."""
    Path(name).write_text(text)
    return f"wrote {len(text)} characters to {Path(name).resolve()}"


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())


@app.tool()
def fail(why: str) -> str:
    """Always fails with `why`."""
    raise ValueError(why)


@app.tool()
def crash() -> str:
    """Ends the server's process at once."""
    os._exit(3)


async def serve_http() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app.streamable_http_app(), log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        asyncio.run(serve_http())
    else:
        app.run()
