"""A session's task list as a turn exposes it to todo_read and todo_write."""

from __future__ import annotations

from collections.abc import Callable

from kodad.domain.events import EventPayload, TodosUpdated
from kodad.domain.model import SessionRecord, Todo
from kodad.store.base import Store


class TodoList:
    """Reads the session's todos; stores a new list and announces it (todos_updated)."""

    def __init__(
        self, session: SessionRecord, store: Store, emit: Callable[[EventPayload], object]
    ) -> None:
        self._session = session
        self._store = store
        self._emit = emit

    def current(self) -> tuple[Todo, ...]:
        return self._session.todos

    async def replace(self, todos: tuple[Todo, ...]) -> None:
        await self._store.set_todos(self._session.id, todos)
        self._session.todos = todos
        self._emit(TodosUpdated(todos))
