"""Requests a turn waits on until a human (or another client) answers them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kodad.domain.errors import FailedPrecondition, NotFound
from kodad.domain.events import (
    Event,
)


@dataclass
class PendingRequest:
    """One open question of a turn and the events that asked it (a sub-agent's question is
    in its own log and in its parent's); the first answer wins."""

    request_id: str
    kind: str
    asked: tuple[Event, ...]
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PendingRequests:
    """The questions of one turn (and of its sub-agents), by id. Kinds: "approval", "loop"
    and "question"."""

    def __init__(self) -> None:
        self._open: dict[str, PendingRequest] = {}
        self._closed: set[str] = set()

    def open(self, request_id: str, kind: str, *asked: Event) -> PendingRequest:
        request = PendingRequest(request_id, kind, asked)
        self._open[request_id] = request
        return request

    def close(self, request_id: str) -> None:
        self._open.pop(request_id, None)
        self._closed.add(request_id)

    def of_kind(self, kind: str) -> PendingRequest | None:
        return next((r for r in self._open.values() if r.kind == kind), None)

    def __len__(self) -> int:
        """How many questions are open."""
        return len(self._open)

    def events(self, session_id: str) -> list[Event]:
        """The events of `session_id`'s log that asked the questions still open, by seq."""
        asked = (e for r in self._open.values() for e in r.asked if e.session_id == session_id)
        return sorted(asked, key=lambda e: e.seq)

    def answer(self, request_id: str, kind: str, value: object) -> None:
        request = self._open.get(request_id)
        if request_id in self._closed or (request is not None and request.future.done()):
            raise FailedPrecondition(f"{kind} request {request_id} was already answered")
        if request is None or request.kind != kind:
            raise NotFound(f"no pending {kind} request {request_id} in this turn")
        request.future.set_result(value)
