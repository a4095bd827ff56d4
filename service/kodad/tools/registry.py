"""The tools of a session, and every built-in tool."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from kodad.tools import agents, ask, fs, memory, recall, search, shell, todo, web
from kodad.tools.base import Tool
from kodad.tools.sandbox import Sandbox


class ToolRegistry:
    """The tools of a session, by name, in the order offered to the model."""

    def __init__(self, tools: Sequence[Tool], refusals: dict[str, str] | None = None) -> None:
        self._tools = {t.name: t for t in tools}
        self._refusals = refusals or {}

    def restricted(self, allows: Callable[[str], bool], by: str) -> ToolRegistry:
        """The tools `allows` keeps; the others are refused with a message naming `by`."""
        kept = [t for t in self._tools.values() if allows(t.name)]
        refused = {n: f"{by} does not allow the tool {n!r}" for n in self._tools if not allows(n)}
        return ToolRegistry(kept, {**self._refusals, **refused}) if refused else self

    def with_tools(self, extra: Sequence[Tool]) -> ToolRegistry:
        """These tools and `extra` (offered after them)."""
        if not extra:
            return self
        return ToolRegistry([*self._tools.values(), *extra], dict(self._refusals))

    def refusal(self, name: str) -> str | None:
        """Why a known tool is not offered here (None when it is, or is unknown)."""
        return self._refusals.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())


def default_registry(
    *, allow_private_fetch: bool = False, sandbox: Sandbox | None = None
) -> ToolRegistry:
    """Every built-in tool; web_fetch may reach private addresses only when allowed; bash
    runs its commands in `sandbox` (unconfined without one)."""
    return ToolRegistry(
        [
            fs.ReadFile(),
            fs.WriteFile(),
            fs.EditFile(),
            fs.DeleteFile(),
            fs.ListDir(),
            search.Glob(),
            search.Grep(),
            shell.Bash(sandbox),
            todo.TodoRead(),
            todo.TodoWrite(),
            ask.AskUser(),
            memory.MemoryRead(),
            memory.MemoryWrite(),
            recall.RecallContext(),
            web.WebFetch(allow_private=allow_private_fetch),
            agents.InvokeAgent(),
        ]
    )
