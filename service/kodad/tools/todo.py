"""todo_read / todo_write: the task list the model keeps for the session."""

from __future__ import annotations

from typing import Any, ClassVar

from kodad.domain.model import Todo, TodoStatus
from kodad.tools.base import (
    Args,
    BuiltinTool,
    Description,
    TodoBoard,
    ToolContext,
    ToolKind,
    ToolOutcome,
)
from kodad.tools.errors import ToolError
from kodad.tools.workspace import Workspace

MAX_TODOS = 100
MAX_CONTENT = 1000
_MARKS = {TodoStatus.PENDING: "[ ]", TodoStatus.IN_PROGRESS: "[>]", TodoStatus.COMPLETED: "[x]"}


def render(todos: tuple[Todo, ...]) -> str:
    if not todos:
        return "The task list is empty."
    return "\n".join(f"{_MARKS[t.status]} {t.content}" for t in todos)


def _board(ctx: ToolContext) -> TodoBoard:
    if ctx.todos is None:
        raise ToolError("this session has no task list")
    return ctx.todos


class TodoRead(BuiltinTool):
    name: ClassVar[str] = "todo_read"
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Read the session's task list ([ ] pending, [>] in progress, [x] done)."
    )
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        return ctx.cap(render(_board(ctx).current()))

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description("Read the task list")


class TodoWrite(BuiltinTool):
    name: ClassVar[str] = "todo_write"
    # It changes the session's plan, not the workspace: it never needs an approval.
    kind: ClassVar[ToolKind] = ToolKind.READ_ONLY
    description: ClassVar[str] = (
        "Replace the session's task list. Use it to plan multi-step work and keep the status "
        "of each step current (pending, in_progress, completed); the user sees the list."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string"},
                        "status": {"type": "string", "enum": [s.value for s in TodoStatus]},
                    },
                    "required": ["content", "status"],
                },
            }
        },
        "required": ["todos"],
    }

    @staticmethod
    def _todos(args: Args) -> tuple[Todo, ...]:
        items = args.raw_value("todos")
        if not isinstance(items, list):
            raise ToolError("todos must be a list of {content, status}")
        if len(items) > MAX_TODOS:
            raise ToolError(f"at most {MAX_TODOS} todos")
        todos = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ToolError(f"todos[{i}] must be an object with content and status")
            content, status = item.get("content"), item.get("status")
            if not isinstance(content, str) or not content.strip():
                raise ToolError(f"todos[{i}].content must be a non-empty string")
            if len(content) > MAX_CONTENT:
                raise ToolError(f"todos[{i}].content is longer than {MAX_CONTENT} characters")
            try:
                todos.append(Todo(content.strip(), TodoStatus(status)))
            except ValueError:
                allowed = ", ".join(s.value for s in TodoStatus)
                raise ToolError(f"todos[{i}].status must be one of {allowed}") from None
        return tuple(todos)

    async def run(self, args: Args, ctx: ToolContext) -> ToolOutcome:
        todos = self._todos(args)
        await _board(ctx).replace(todos)
        return ctx.cap(render(todos))

    def describe(self, args: Args, workspace: Workspace) -> Description:
        return Description(f"Update the task list ({len(self._todos(args))} items)")
