"""A session's history as a Markdown transcript (/export, `kodad sessions export`)."""

from __future__ import annotations

import json

from kodad.gen.koda.v1 import session_pb2 as spb


def markdown(session: spb.Session, messages: list[spb.Message]) -> str:
    lines = [f"# {session.title or session.id}", "", f"Workspace: `{session.workspace}`", ""]
    for m in messages:
        if m.role == spb.MESSAGE_ROLE_USER:
            lines += ["## You", "", m.text, ""]
        elif m.role == spb.MESSAGE_ROLE_ASSISTANT:
            lines += ["## kodad", ""]
            if m.text:
                lines += [m.text, ""]
            for call in m.tool_calls:
                lines += [f"- `{call.tool_name}` `{_compact(call.arguments_json)}`"]
            if m.tool_calls:
                lines.append("")
        elif m.role == spb.MESSAGE_ROLE_TOOL:
            result = m.tool_result
            status = "error" if result.is_error else "result"
            lines += [f"<details><summary>{status} of {result.call_id}</summary>", "", "```",
                      result.output.rstrip(), "```", "</details>", ""]  # fmt: skip
        elif m.role == spb.MESSAGE_ROLE_SUMMARY:
            lines += ["## Summary of earlier messages", "", m.text, ""]
    return "\n".join(lines)


def _compact(arguments_json: str) -> str:
    try:
        return json.dumps(json.loads(arguments_json), ensure_ascii=False)[:200]
    except (ValueError, RecursionError):
        return arguments_json[:200]
