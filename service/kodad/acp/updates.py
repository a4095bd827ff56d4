"""kodad's events as ACP session updates: one translation for a live turn and for the replay
of a stored session, so an editor sees the same tool calls either way."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from acp import helpers
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    ContentToolCallContent,
    FileEditToolCallContent,
    PlanEntry,
    TerminalToolCallContent,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    ToolKind,
    UsageUpdate,
    UserMessageChunk,
)

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb

Update = (
    UserMessageChunk
    | AgentMessageChunk
    | AgentThoughtChunk
    | ToolCallStart
    | ToolCallProgress
    | AgentPlanUpdate
    | UsageUpdate
)
Content = ContentToolCallContent | FileEditToolCallContent | TerminalToolCallContent

# What of a tool's output an update shows: its tail, so a flood stays a bounded message.
SHOWN_OUTPUT_CHARS = 16 * 1024
_KINDS: dict[str, ToolKind] = {
    "read_file": "read",
    "list_dir": "read",
    "memory_read": "read",
    "recall_context": "read",
    "todo_read": "read",
    "glob": "search",
    "grep": "search",
    "write_file": "edit",
    "edit_file": "edit",
    "memory_write": "edit",
    "delete_file": "delete",
    "bash": "execute",
    "web_fetch": "fetch",
    "invoke_agent": "think",
    "todo_write": "think",
}
_TODO_STATUS = {
    spb.TODO_STATUS_PENDING: "pending",
    spb.TODO_STATUS_IN_PROGRESS: "in_progress",
    spb.TODO_STATUS_COMPLETED: "completed",
}


def tool_kind(tool_name: str) -> ToolKind:
    return _KINDS.get(tool_name, "other")


def fenced(text: str) -> str:
    """`text` as a Markdown code block whose fence no backtick run inside it can close."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}"


def tail(text: str, limit: int = SHOWN_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters left out]\n" + text[-limit:]


def _arguments(arguments_json: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments_json or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    return value if isinstance(value, str) else ""


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def title(tool_name: str, args: dict[str, Any]) -> str:
    """One line an editor shows for the call, e.g. "Edit src/app.py" or "`pytest -q`"."""
    path = _text(args, "path")
    verbs = {
        "read_file": "Read",
        "write_file": "Write",
        "edit_file": "Edit",
        "delete_file": "Delete",
    }
    if tool_name in verbs:
        return f"{verbs[tool_name]} {path}"
    if tool_name == "list_dir":
        return f"List {path or '.'}"
    if tool_name == "glob":
        return f"Find {_text(args, 'pattern')}"
    if tool_name == "grep":
        where = f" in {path}" if path else ""
        return f"Search {_text(args, 'pattern')!r}{where}"
    if tool_name == "bash":
        return f"`{_first_line(_text(args, 'command'))}`"
    if tool_name == "web_fetch":
        return f"Fetch {_text(args, 'url')}"
    if tool_name == "invoke_agent":
        return f"Agent {_text(args, 'agent')}: {_first_line(_text(args, 'task'))}"
    if tool_name == "ask_user":
        return f"Ask: {_first_line(_text(args, 'question'))}"
    if tool_name == "todo_write":
        return "Update the task list"
    if "__" in tool_name:
        server, _, tool = tool_name.partition("__")
        return f"{server}: {tool}"
    return tool_name


@dataclass
class _Call:
    tool_name: str
    output: str = ""
    started: bool = False  # in_progress sent


@dataclass
class Translator:
    """Turns a session's events, in order, into ACP updates. `replay` also yields the user's
    prompts (a live client sent them itself). Sub-agents' tool calls appear under ids
    prefixed by their session, their text as the output of the invoke_agent call."""

    workspace: str
    replay: bool = False
    _calls: dict[str, _Call] = field(default_factory=dict)

    def tool_call_id(self, event: epb.EngineEvent, call_id: str) -> str:
        if event.subagent_session_id:
            return f"{event.subagent_session_id}/{call_id}"
        return call_id

    def absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workspace, path))

    def feed(self, event: epb.EngineEvent) -> list[Update]:
        which = event.WhichOneof("payload")
        sub = bool(event.subagent_session_id)
        if which == "turn_started" and self.replay and not sub and event.turn_started.text:
            return [helpers.update_user_message_text(event.turn_started.text)]
        if which == "text_delta":
            if sub:
                return self._output(event.parent_call_id, event.text_delta.text)
            return [helpers.update_agent_message_text(event.text_delta.text)]
        if which == "thinking_delta" and not sub:
            return [helpers.update_agent_thought_text(event.thinking_delta.text)]
        if which == "tool_call_started":
            return [self._started(event, event.tool_call_started)]
        if which == "tool_call_output":
            out = event.tool_call_output
            chunk = out.chunk
            if out.omitted_chars:
                chunk = f"\n[{out.omitted_chars} characters left out]\n{chunk}"
            return self._output(self.tool_call_id(event, out.call_id), chunk)
        if which == "approval_resolved":
            return []
        if which == "tool_call_finished":
            return self._finished(event, event.tool_call_finished)
        if which == "todos_updated" and not sub:
            return [plan(event.todos_updated.todos)]
        if which == "context_usage" and not sub:
            usage = event.context_usage
            return [
                UsageUpdate(
                    session_update="usage_update",
                    used=max(0, usage.used_tokens),
                    size=max(0, usage.max_tokens),
                )
            ]
        return []

    def _started(self, event: epb.EngineEvent, started: epb.ToolCallStarted) -> ToolCallStart:
        call_id = self.tool_call_id(event, started.call_id)
        name = started.tool_name
        self._calls[call_id] = _Call(name)
        args = _arguments(started.arguments_json)
        path = _text(args, "path")
        locations = [ToolCallLocation(path=self.absolute(path))] if path else None
        content: list[Content] | None = None
        if name == "write_file" and path:
            content = [helpers.tool_diff_content(self.absolute(path), _text(args, "content"))]
        elif name == "edit_file" and path:
            content = [
                helpers.tool_diff_content(
                    self.absolute(path), _text(args, "new_string"), _text(args, "old_string")
                )
            ]
        meta = None
        if event.subagent_session_id:
            meta = {
                "kodad": {
                    "subagentSessionId": event.subagent_session_id,
                    "parentCallId": event.parent_call_id,
                }
            }
        return ToolCallStart(
            session_update="tool_call",
            tool_call_id=call_id,
            title=title(name, args),
            kind=tool_kind(name),
            status="pending",
            content=content,
            locations=locations,
            raw_input=args,
            field_meta=meta,
        )

    def _output(self, call_id: str, chunk: str) -> list[Update]:
        call = self._calls.get(call_id)
        if call is None or not chunk:
            return []
        call.output = tail(call.output + chunk, 2 * SHOWN_OUTPUT_CHARS)
        call.started = True
        shown = helpers.tool_content(helpers.text_block(fenced(tail(call.output))))
        return [
            ToolCallProgress(
                session_update="tool_call_update",
                tool_call_id=call_id,
                status="in_progress",
                content=[shown],
            )
        ]

    def _finished(self, event: epb.EngineEvent, finished: epb.ToolCallFinished) -> list[Update]:
        call_id = self.tool_call_id(event, finished.call_id)
        call = self._calls.pop(call_id, None)
        edits = call is not None and tool_kind(call.tool_name) == "edit"
        content: list[Content] | None = None
        if finished.is_error or not edits:  # an edit that worked keeps showing its diff
            content = [helpers.tool_content(helpers.text_block(fenced(tail(finished.output))))]
        return [
            ToolCallProgress(
                session_update="tool_call_update",
                tool_call_id=call_id,
                status="failed" if finished.is_error else "completed",
                content=content,
                raw_output={"output": tail(finished.output), "isError": finished.is_error},
            )
        ]


def plan(todos: Any) -> AgentPlanUpdate:
    entries = [
        PlanEntry(
            content=todo.content,
            priority="medium",
            status=_TODO_STATUS.get(todo.status, "pending"),  # type: ignore[arg-type]
        )
        for todo in todos
    ]
    return helpers.update_plan(entries)
