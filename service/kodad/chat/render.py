"""How a turn looks in the terminal: the answer streams live and each block is rendered
as Markdown once complete; thinking is dimmed and collapsed; each tool call is a line with
a spinner and its elapsed time, then a one-line result summary."""

from __future__ import annotations

import json
import time

from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.text import Text

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb

_CHANGES: dict[int, str] = {
    epb.FILE_CHANGE_KIND_CREATED: "created",
    epb.FILE_CHANGE_KIND_MODIFIED: "modified",
    epb.FILE_CHANGE_KIND_DELETED: "deleted",
}
_REASONS: dict[int, str] = {
    epb.TURN_END_REASON_COMPLETED: "",
    epb.TURN_END_REASON_CANCELLED: "turn cancelled",
    epb.TURN_END_REASON_FAILED: "turn failed",
    epb.TURN_END_REASON_STOPPED_AT_LOOP_CAP: "stopped at the loop cap",
    epb.TURN_END_REASON_BUDGET_EXHAUSTED: "stopped: budget spent",
}


def brief(tool: str, arguments_json: str) -> str:
    """The argument a human recognises a call by: the command, the path or the pattern."""
    try:
        args = json.loads(arguments_json or "{}")
    except (ValueError, RecursionError):
        return ""
    if not isinstance(args, dict):
        return ""
    for key in ("command", "path", "pattern"):
        if isinstance(args.get(key), str):
            value: str = args[key].strip().splitlines()[0] if args[key].strip() else ""
            return value[:80]
    return ""


def call_label(tool: str, arguments_json: str) -> str:
    """A call as one line: the tool and what it is called on."""
    return f"{tool} {brief(tool, arguments_json)}".strip()


def _tail(text: str, style: str) -> list[Text]:
    """The last three lines of `text`, indented, for the live area."""
    return [Text(f"    {line[:200]}", style=style) for line in text.rstrip("\n").splitlines()[-3:]]


def summarize_output(tool: str, output: str, is_error: bool, truncated: bool) -> str:
    lines = len(output.splitlines())
    size = len(output.encode())
    text = f"{lines} line{'s' if lines != 1 else ''}, {size:,} bytes"
    if tool == "bash" and "[exit code " in output:
        text += ", exit " + output.rsplit("[exit code ", 1)[1].split("]")[0]
    elif tool == "bash" and not is_error:
        text += ", exit 0"
    if truncated:
        text += ", truncated"
    return text


def _written_bytes(tool: str, arguments_json: str) -> int:
    """What a write_file call writes (its content's size), 0 for other tools."""
    if tool != "write_file":
        return 0
    try:
        args = json.loads(arguments_json or "{}")
    except (ValueError, RecursionError):
        return 0
    content = args.get("content") if isinstance(args, dict) else None
    return len(content.encode()) if isinstance(content, str) else 0


def rule_text(rule: spb.ApprovalRule) -> str:
    """How the transcript names the rule that decided a call without asking."""
    what = f"{rule.tool_name} {rule.command_prefix}".strip()
    return f"{'refused' if rule.reject else 'allowed'} by rule: {what}"


class TurnView:
    """Consumes one turn's events and draws them; `pause()` before prompting the user."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.thinking = ""
        self.changes: list[tuple[str, int]] = []
        self._block = ""  # answer text of the block in progress
        self._thought = ""  # the thinking block in progress, shown live until it ends
        self.context: epb.ContextUsage | None = None  # the last context_usage of the turn
        self._in_fence = False
        self._tool: tuple[str, str, float] | None = None  # tool name, label, start time
        self._spinner = Spinner("dots")  # one object, so its frames advance
        self._output = ""  # the running call's output, for its last lines
        self._written = 0  # bytes a write_file call writes
        self._by_rule = ""  # "allowed by rule …" when a session rule decided the running call
        self._live: Live | None = None
        # Tool calls of sub-agents in progress: (child session, call id) -> (tool, label).
        self._subagent_calls: dict[tuple[str, str], tuple[str, str]] = {}

    # Live area: the partial answer block or the running tool's spinner.

    def _live_renderable(self) -> Group:
        parts: list[Text | Spinner] = []
        if self._thought.strip():
            self._spinner.update(text=Text(" thinking…", style="dim italic"))
            parts.append(self._spinner)
            parts += _tail(self._thought, "dim italic")
        if self._block:
            parts.append(Text(self._block))
        if self._tool is not None:
            _, label, started = self._tool
            self._spinner.update(text=Text(f" {label}  ({time.monotonic() - started:.1f} s)"))
            parts.append(self._spinner)
            parts += _tail(self._output, "dim")
        return Group(*parts)

    def _refresh(self) -> None:
        if self._live is None:
            self._live = Live(
                self._live_renderable(), console=self.console, transient=True,
                refresh_per_second=12, auto_refresh=True, get_renderable=self._live_renderable,
            )  # fmt: skip
            self._live.start()
        else:
            self._live.refresh()

    def pause(self) -> None:
        """Stops the live area (its content is shown again at the next refresh)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _flush_block(self) -> None:
        block, self._block = self._block, ""
        self.pause()
        if block.strip():
            self.console.print(Markdown(block))

    def _text(self, text: str) -> None:
        for line in text.splitlines(keepends=True):
            self._block += line
            if line.endswith("\n"):
                if line.lstrip().startswith("```"):
                    self._in_fence = not self._in_fence
                    if not self._in_fence:
                        self._flush_block()
                elif not self._in_fence and self._block.endswith("\n\n"):
                    self._flush_block()
        if self._block:
            self._refresh()

    def _subagent(self, event: epb.EngineEvent) -> None:
        """A sub-agent's event: its tool calls and notices, one indented line each (its
        answer comes back as the invoke_agent result)."""
        kind = event.WhichOneof("payload")
        child = event.subagent_session_id
        if kind == "tool_call_started":
            call = event.tool_call_started
            label = call_label(call.tool_name, call.arguments_json)
            self._subagent_calls[(child, call.call_id)] = (call.tool_name, label)
        elif kind == "tool_call_finished":
            done = event.tool_call_finished
            tool, label = self._subagent_calls.pop((child, done.call_id), ("", done.call_id))
            summary = summarize_output(tool, done.output, done.is_error, done.truncated)
            mark, style = ("✗", "red") if done.is_error else ("✓", "green")
            self.pause()
            line = Text("    ↳ ", style="dim")
            line.append(f"{mark} ", style=style)
            line.append(label)
            line.append(f" — {summary}", style="dim")
            self.console.print(line)
        elif kind == "notice":
            self.pause()
            self.console.print(Text(f"    ↳ • {event.notice.text}", style="yellow"))
        if self._tool is not None:
            self._refresh()

    def handle(self, event: epb.EngineEvent) -> None:
        if event.subagent_session_id:
            self._subagent(event)
            return
        kind = event.WhichOneof("payload")
        if kind == "text_delta":
            self._show_thinking()
            self._text(event.text_delta.text)
        elif kind == "thinking_delta":
            self.thinking += event.thinking_delta.text
            self._thought += event.thinking_delta.text
            self._refresh()
        elif kind == "tool_call_started":
            self._flush_block()
            call = event.tool_call_started
            self._show_thinking()
            label = call_label(call.tool_name, call.arguments_json)
            self._tool = (call.tool_name, label, time.monotonic())
            self._output = ""
            self._written = _written_bytes(call.tool_name, call.arguments_json)
            self._by_rule = ""
            self._refresh()
        elif kind == "tool_call_output" and self._tool is not None:
            self._output = (self._output + event.tool_call_output.chunk)[-4096:]
            self._refresh()
        elif kind == "todos_updated":
            self._flush_block()
            marks = {spb.TODO_STATUS_COMPLETED: "☑", spb.TODO_STATUS_IN_PROGRESS: "◐"}
            for todo in event.todos_updated.todos:
                self.console.print(f"  {marks.get(todo.status, '☐')} {todo.content}")
        elif kind == "approval_requested" and self._tool is None:  # followed from here on
            asked = event.approval_requested
            label = call_label(asked.tool_name, asked.arguments_json)
            self._tool = (asked.tool_name, label, time.monotonic())
        elif kind == "approval_resolved" and self._tool is not None:
            name, label, _ = self._tool  # the clock runs from the decision, not the question
            self._tool = (name, label, time.monotonic())
            if event.approval_resolved.HasField("rule"):
                self._by_rule = rule_text(event.approval_resolved.rule)
            self._refresh()
        elif kind == "tool_call_finished":
            done = event.tool_call_finished
            tool, label, elapsed = "", done.call_id, 0.0
            if self._tool is not None:
                tool, label, started = self._tool
                elapsed = time.monotonic() - started
            self._tool = None
            self.pause()
            mark, style = ("✗", "red") if done.is_error else ("✓", "green")
            summary = summarize_output(tool, done.output, done.is_error, done.truncated)
            if tool == "write_file" and not done.is_error:
                summary = f"{self._written:,} bytes written"
            line = Text(f"{mark} ", style=style)
            line.append(label, style="bold")
            line.append(f" — {summary} ({elapsed:.1f} s)", style="dim")
            if self._by_rule:
                line.append(f" · {self._by_rule}", style="dim italic")
            self.console.print(line)
            if done.is_error and done.output:
                self.console.print(
                    Text("  " + done.output.strip().splitlines()[0][:200], style="red dim")
                )
        elif kind == "context_usage":
            self.context = event.context_usage
        elif kind == "file_changed":
            change = event.file_changed
            self.changes.append((change.path, change.change))
        elif kind == "notice":
            self.pause()
            style = {epb.NOTICE_LEVEL_WARNING: "yellow", epb.NOTICE_LEVEL_ERROR: "red"}.get(
                event.notice.level, "cyan"
            )
            self.console.print(Text(f"• {event.notice.text}", style=style))
        elif kind == "turn_ended":
            self._flush_block()
            self._show_thinking()
            self._ended(event.turn_ended)

    def _show_thinking(self) -> None:
        """The thinking block that just ended, collapsed to its first line, where it was."""
        thought, self._thought = self._thought.strip(), ""
        if not thought:
            return
        self.pause()
        lines = len(thought.splitlines())
        more = f"{lines} line{'s' if lines != 1 else ''}; /thinking shows it all"
        self.console.print(Text(f"✻ {thought.splitlines()[0][:100]} ({more})", style="dim italic"))

    def _ended(self, ended: epb.TurnEnded) -> None:
        if self.changes:
            self.console.print(Text("files changed:", style="bold"))
            for path, change in self.changes:
                self.console.print(f"  {_CHANGES.get(change, '?'):<8} {path}")
        usage = ended.usage
        tokens = f"tokens: {usage.input_tokens:,} in · {usage.output_tokens:,} out"
        if usage.cache_read_tokens:
            tokens += f" · {usage.cache_read_tokens:,} cached"
        reason = _REASONS.get(ended.reason, "")
        if ended.reason == epb.TURN_END_REASON_FAILED:
            reason += f" ({ended.error_code}): {ended.error_message}"
        elif ended.reason == epb.TURN_END_REASON_BUDGET_EXHAUSTED:
            reason += f" ({ended.error_message})"
        if reason:
            self.console.print(Text(reason, style="red" if ended.error_code else "yellow"))
        self.console.print(Text(tokens, style="dim"))

    def approval(self, request: epb.ApprovalRequested) -> None:
        """Shows what the agent wants to do, before the one-key question."""
        self.pause()
        preview = request.preview
        body: Syntax | Text
        if preview.startswith("---") or preview.startswith("@@"):
            body = Syntax(preview, "diff", theme="ansi_dark", word_wrap=True)
        elif preview:
            body = Syntax(preview, "bash", theme="ansi_dark", word_wrap=True)
        else:
            body = Text(request.arguments_json)
        risk = epb.ApprovalRisk.Name(request.risk).removeprefix("APPROVAL_RISK_")
        high = request.risk == epb.APPROVAL_RISK_HIGH
        title = f"approve? {request.summary}"
        if request.risk != epb.APPROVAL_RISK_UNSPECIFIED:
            title += f"  [risk: {risk}]"
        style = "bold red" if high else "yellow"
        self.console.print(Panel(body, title=Text(title), border_style=style))  # not markup
        if high:
            self.console.print(
                Text("HIGH risk: this can destroy work or reach beyond the workspace", style="red")
            )
