"""`kodad acp` driven by the TypeScript ACP SDK (`@agentclientprotocol/sdk`), the language
of Zed's and most editors' side of the protocol: one prompt with a permission round trip."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from kodad.config import ServerConfig
from tests.acp_harness import service, stored_events_of
from tests.helpers import kind, tool_call

EDITOR = Path(__file__).resolve().parents[1] / "acp_ts"


async def test_a_typescript_editor_gets_a_permission_and_the_file_is_written(
    server_config: ServerConfig, workspace: Path
) -> None:
    assert (EDITOR / "node_modules" / "@agentclientprotocol" / "sdk").is_dir(), (
        "run `make install` (it installs tests/acp_ts's npm packages)"
    )
    node = shutil.which("node")
    assert node, "node is needed for the TypeScript ACP test"
    rounds = ([tool_call("write_file", "w", path="ts.txt", content="from zed\n")], [{"text": "ok"}])
    async with service(server_config, *rounds) as server:
        kodad = [sys.executable, "-m", "kodad", "acp", "--connect", server.address]
        child = await asyncio.create_subprocess_exec(
            node, str(EDITOR / "editor.mjs"), str(workspace), "allow_once", "--", *kodad,
            stdout=asyncio.subprocess.PIPE, cwd=EDITOR,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0
        seen = json.loads(out.decode().strip().splitlines()[-1])
        assert seen["agent"]["name"] == "kodad" and seen["stopReason"] == "end_turn"
        assert seen["exitCode"] == 0  # kodad acp exits when the editor closes its stdin
        (asked,) = seen["permissions"]
        assert asked["toolCall"]["toolCallId"] == "w"
        assert asked["kinds"] == ["allow_once", "allow_always", "reject_once", "reject_always"]
        kinds = [u["sessionUpdate"] for u in seen["updates"]]
        assert "tool_call" in kinds and "agent_message_chunk" in kinds
        final = [u for u in seen["updates"] if u["sessionUpdate"] == "tool_call_update"][-1]
        assert final["status"] == "completed"
        assert (workspace / "ts.txt").read_text() == "from zed\n"
        events = await stored_events_of(server, seen["sessionId"])
        assert [e for e in events if kind(e) == "approval_resolved"]
