"""`kodad sessions list|show|delete|export`: for scripts (`--json` for machine output)."""

from __future__ import annotations

import json
import sys
from datetime import UTC

from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from kodad.chat import transcript
from kodad.client import Client, KodadError
from kodad.gen.koda.v1 import session_pb2 as spb


def sessions_table(found: list[spb.Session], current: str = "") -> Table:
    """Sessions as a table: number, title, state, last change, messages, id, workspace."""
    table = Table("#", "title", "state", "updated", "messages", "id", "workspace", box=None)
    for number, s in enumerate(found, 1):
        state = "running" if s.state == spb.SESSION_STATE_RUNNING else "idle"
        updated = s.update_time.ToDatetime(UTC).astimezone().strftime("%Y-%m-%d %H:%M")
        mark = "*" if s.id == current else ""
        table.add_row(f"{number}{mark}", s.title or "(untitled)", state, updated,
                      str(s.message_count), s.id, s.workspace)  # fmt: skip
    return table


async def sessions(
    target: str, token: str | None, action: str, session_id: str | None, as_json: bool
) -> int:
    async with Client(target, token=token) as client:
        try:
            if action == "list":
                found = [s async for s in client.list_sessions()]
                if as_json:
                    print(json.dumps([json_format.MessageToDict(s) for s in found], indent=2))
                if not as_json:
                    Console(highlight=False).print(sessions_table(found))
                return 0
            if session_id is None:
                print(f"kodad sessions {action} needs a session id", file=sys.stderr)
                return 2
            if action == "show":
                session = await client.get_session(session_id)
                if as_json:
                    messages = await client.messages(session_id)
                    body = json_format.MessageToDict(session)
                    body["messages"] = [json_format.MessageToDict(m) for m in messages]
                    print(json.dumps(body, indent=2))
                else:
                    print(json_format.MessageToJson(session))
            elif action == "delete":
                await client.delete_session(session_id)
                print(json.dumps({"deleted": session_id}) if as_json else f"deleted {session_id}")
            elif action == "export":
                session = await client.get_session(session_id)
                messages = await client.messages(session_id)
                if as_json:
                    print(json.dumps([json_format.MessageToDict(m) for m in messages], indent=2))
                else:
                    print(transcript.markdown(session, messages))
        except KodadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0
