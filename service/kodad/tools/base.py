"""Tool protocol, the context a tool runs in, and the registry offered to the model."""

from __future__ import annotations

import collections
import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kodad.domain import jsontext
from kodad.domain.model import ApprovalRisk, FileChangeKind, Message, Todo
from kodad.tools.errors import ToolError
from kodad.tools.sandbox import Confinement
from kodad.tools.workspace import Workspace


class ToolKind(enum.Enum):
    """How a tool is classified for approvals."""

    READ_ONLY = "read_only"
    MUTATING = "mutating"
    SHELL = "shell"


@dataclass(frozen=True)
class Description:
    """One line a human reads, and a preview: a unified diff, or a command and its cwd."""

    summary: str
    preview: str = ""


@dataclass(frozen=True)
class ToolOutcome:
    output: str
    is_error: bool = False
    truncated: bool = False


# Of an output past the stream limit, how much of its end still streams.
STREAM_TAIL = 64 * 1024


async def _nothing_to_drain() -> None:
    return None


class TodoBoard(Protocol):
    """The session's task list as a turn exposes it to tools."""

    def current(self) -> tuple[Todo, ...]: ...

    async def replace(self, todos: tuple[Todo, ...]) -> None: ...


@dataclass
class ToolContext:
    """What a running tool may use: the workspace, an output stream, a change log."""

    workspace: Workspace
    output_limit: int
    turn_id: str = ""
    # Emits a chunk of the call's output and how many characters were left out before it.
    emit_output: Callable[[str, int], object] = lambda chunk, omitted: None
    # How much of a call's output streams (and is stored) before only its tail does.
    stream_limit: int = 1024 * 1024
    # Awaited after emitting output: waits while the event log is too far behind.
    drain: Callable[[], Awaitable[None]] = _nothing_to_drain
    changes: list[tuple[str, FileChangeKind]] = field(default_factory=list)
    # The session's task list (todo_read / todo_write); None outside a turn.
    todos: TodoBoard | None = None
    # Asks the user a question and waits for the answer (ask_user); None outside a turn.
    ask: Callable[[str, tuple[str, ...]], Awaitable[str]] | None = None
    # The session's stored history (recall_context); None outside a turn.
    history: Callable[[], Awaitable[list[Message]]] | None = None
    # Runs a sub-agent (agent profile, task) to its end (invoke_agent); None where a
    # sub-agent may not start one.
    subagent: Callable[[str, str], Awaitable[ToolOutcome]] | None = None
    # What the processes this call starts may do (the least unless the turn says more).
    confinement: Confinement = field(default_factory=Confinement)
    # The tenant the session belongs to ("" without authentication): per-tenant data.
    tenant: str = ""

    _streamed: int = field(default=0, init=False)
    _tail: collections.deque[str] = field(default_factory=collections.deque, init=False)
    _tail_size: int = field(default=0, init=False)
    _omitted: int = field(default=0, init=False)

    def stream(self, chunk: str) -> None:
        """Streams a chunk of the call's output: the first `stream_limit` characters at once;
        of the rest only the last STREAM_TAIL characters, kept until end_stream."""
        if self._streamed < self.stream_limit:
            head = chunk[: self.stream_limit - self._streamed]
            self._streamed += len(head)
            self.emit_output(head, 0)
            chunk = chunk[len(head) :]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        excess = self._tail_size - STREAM_TAIL
        while excess > 0:  # drop the oldest characters beyond the tail's size
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                cut = len(first)
            else:
                self._tail[0] = first[excess:]
                cut = excess
            self._omitted += cut
            self._tail_size -= cut
            excess -= cut

    def end_stream(self) -> None:
        """Streams the kept tail of an output longer than the stream limit."""
        if self._tail:
            self.emit_output("".join(self._tail), self._omitted)
            self._tail.clear()
            self._tail_size = self._omitted = 0

    def changed(self, path: str, change: FileChangeKind) -> None:
        self.changes.append((path, change))

    def cap(self, text: str) -> ToolOutcome:
        """An outcome holding `text`, cut to the output limit."""
        if len(text) <= self.output_limit:
            return ToolOutcome(text)
        return ToolOutcome(text[: self.output_limit], truncated=True)


class Tool(Protocol):
    """A tool the model may call. Built-in tools set these as class variables; tools found
    at run time (an MCP server's) per instance."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def kind(self) -> ToolKind: ...
    @property
    def parameters(self) -> dict[str, Any]: ...

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome: ...

    def describe(self, args: Args, workspace: Workspace) -> Description:
        """What a call would do, for a human deciding on it. Raises ToolError for a call
        that cannot run, so nobody is asked about it."""
        ...

    async def needs_approval(self, args: Args, scope: ApprovalScope) -> ApprovalRisk | None:
        """Whether a call of a changing tool asks a human in CONFIRM, and how loudly: None
        lets it run unasked (confined to reading), a risk asks (HIGH: no rule spares it)."""
        ...


@dataclass(frozen=True)
class ApprovalScope:
    """What a tool may consult to decide whether a call needs approval."""

    workspace: Workspace
    # Whether the session created the file at this workspace-relative path (and owns it).
    owns: Callable[[str], Awaitable[bool]]


class BuiltinTool:
    """The defaults a built-in tool inherits: every call of a changing tool asks."""

    async def needs_approval(self, args: Args, scope: ApprovalScope) -> ApprovalRisk | None:
        return ApprovalRisk.UNSPECIFIED


class Args:
    """Typed access to a tool call's JSON arguments; bad values raise ToolError."""

    def __init__(self, raw: str) -> None:
        try:
            value = jsontext.loads(raw or "{}")
        except jsontext.TooDeep as e:
            raise ToolError(f"arguments are {e}") from None
        except json.JSONDecodeError as e:
            raise ToolError(f"arguments are not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise ToolError("arguments must be a JSON object")
        self._values: dict[str, Any] = value

    def values(self) -> dict[str, Any]:
        """Every argument, as the model sent them."""
        return dict(self._values)

    def raw_value(self, name: str) -> Any:
        """The argument as the model sent it (None when absent)."""
        return self._values.get(name)

    def string(self, name: str, default: str | None = None) -> str:
        value = self._values.get(name, default)
        if value is None:
            raise ToolError(f"missing required argument {name!r}")
        if not isinstance(value, str):
            raise ToolError(f"argument {name!r} must be a string")
        return value

    def integer(self, name: str, default: int) -> int:
        value = self._values.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ToolError(f"argument {name!r} must be an integer")
        return int(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._values.get(name, default)
        if not isinstance(value, bool):
            raise ToolError(f"argument {name!r} must be a boolean")
        return value
