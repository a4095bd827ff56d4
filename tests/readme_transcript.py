"""The README's grpcurl session, replayed: its CreateSession and RunTurn requests are read
from the README and sent to a live service, and the events come back in the README's
one-line form. `python -m tests.readme_transcript` rewrites the README's transcript from a
real run; tests/integration/test_readme.py fails when the README drifts from one."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from kodad.client import Client
from kodad.gen.koda.v1 import session_service_pb2 as pb
from tests.kodad_process import KodadProcess

README = Path(__file__).resolve().parents[1] / "README.md"
# The RunTurn command's output: the lines between it and the next command.
_RUN_TURN = re.compile(r"(koda\.v1\.SessionService/RunTurn\n)(.*?)(\n\n\$ )", re.S)


def _request(readme: str, rpc: str) -> dict[str, Any]:
    """The JSON body (`-d '...'`) of the README's grpcurl call of `rpc`."""
    command = next((c for c in readme.split("\n$ ") if f"SessionService/{rpc}\n" in c), "")
    found = re.search(r"-d '(.*?)'", command, re.S)
    assert found, f"the README has no grpcurl call of {rpc} with a body"
    body: dict[str, Any] = json.loads(found.group(1))
    return body


def _inline(value: Any) -> str:
    """JSON on one line as the README prints it: `{ "k": v, ... }`."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}: {_inline(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[ " + ", ".join(_inline(v) for v in value) + " ]"
    return json.dumps(value)


def _short(value: str) -> str:
    """An id as the README shortens it: its prefix (`s_`, `t_`) or first 12 characters."""
    head = value.split("_", 1)[0] + "_" if "_" in value[:3] else value[:12]
    return head + "..."


def line(event: dict[str, Any], first: bool) -> str:
    """One event of the transcript: the envelope's ids only on the first, payload ids short."""
    kind = next(k for k in event if k not in ("sessionId", "turnId", "seq", "createTime"))
    payload = event[kind]
    if "checkpointId" in payload:
        payload["checkpointId"] = _short(payload["checkpointId"])
    head = "..."
    if first:
        head = f'"sessionId": "{_short(event["sessionId"])}", "turnId": "{_short(event["turnId"])}"'
    return f'{{ "event": {{ {head}, "seq": "{event["seq"]}", "{kind}": {_inline(payload)} }} }}'


async def transcript(address: str, workspace: Path, readme: str) -> list[str]:
    """The README's session run against the service at `address`, in `workspace`."""
    create = json_format.ParseDict(_request(readme, "CreateSession"), pb.CreateSessionRequest())
    create.session.workspace = str(workspace)
    start = _request(readme, "RunTurn")["command"]["start_turn"]
    async with Client(address) as client:
        session = (await client.stub.CreateSession(create)).session
        events = [
            json_format.MessageToDict(e) async for e in client.run_turn(session.id, start["text"])
        ]
    return [line(event, first=n == 0) for n, event in enumerate(events)]


def documented(readme: str) -> list[str]:
    found = _RUN_TURN.search(readme)
    assert found, "the README has no RunTurn transcript"
    return found.group(2).splitlines()


def comparable(lines: list[str]) -> list[str]:
    """The transcript without what depends on the workspace's path (the token estimate)."""
    return [re.sub(r'"usedTokens": "\d+"', '"usedTokens": "N"', text) for text in lines]


def main() -> None:
    readme = README.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "demo"
        workspace.mkdir()
        service = KodadProcess(Path(tmp) / "data")
        try:
            lines = asyncio.run(transcript(service.address, workspace, readme))
        finally:
            service.close()
    new = _RUN_TURN.sub(lambda m: m.group(1) + "\n".join(lines) + m.group(3), readme, count=1)
    README.write_text(new)
    print(f"README.md: {len(lines)} events", file=sys.stderr)


if __name__ == "__main__":
    main()
