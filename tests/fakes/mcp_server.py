"""A small MCP server written with the official SDK, for the MCP tool tests.

`python mcp_server.py` speaks MCP over stdio; `python mcp_server.py http [token]` serves
streamable HTTP on a free loopback port (refusing requests without `Authorization: Bearer
<token>` when a token is given) and prints the port as its first line.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

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


# Names this process (its pid is the sandbox's own, the same in every run).
INSTANCE = uuid.uuid4().hex


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def pid() -> str:
    """Which process the server is: the same answer for as long as it runs."""
    return INSTANCE


@app.tool()
def fail(why: str) -> str:
    """Always fails with `why`."""
    raise ValueError(why)


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def env(variable: str) -> str:
    """The value of one of the server's environment variables."""
    return os.environ.get(variable, "<unset>")


@app.tool()
def crash() -> str:
    """Ends the server's process at once."""
    os._exit(3)


def bearer(inner: Any, token: str) -> Any:
    """An ASGI wrapper refusing HTTP requests without the bearer token."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        if scope["type"] == "http" and headers.get(b"authorization") != f"Bearer {token}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"missing or wrong token"})
            return
        await inner(scope, receive, send)

    return guarded


async def serve_http(token: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web = app.streamable_http_app()
    config = uvicorn.Config(bearer(web, token) if token else web, log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        asyncio.run(serve_http(sys.argv[2] if len(sys.argv) > 2 else ""))
    else:
        app.run()
