"""Requests a turn waits on until a human (or another client) answers them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kodad.engine.errors import FailedPrecondition, NotFound
from kodad.engine.model import Event


@dataclass
class PendingRequest:
    """One open question of a turn and the event that asked it; the first answer wins."""

    request_id: str
    kind: str
    event: Event
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PendingRequests:
    """The questions of one turn, by id. Kinds: "approval", "loop" and "question"."""

    def __init__(self) -> None:
        self._open: dict[str, PendingRequest] = {}
        self._closed: set[str] = set()

    def open(self, request_id: str, kind: str, event: Event) -> PendingRequest:
        request = PendingRequest(request_id, kind, event)
        self._open[request_id] = request
        return request

    def close(self, request: PendingRequest) -> None:
        self._open.pop(request.request_id, None)
        self._closed.add(request.request_id)

    def of_kind(self, kind: str) -> PendingRequest | None:
        return next((r for r in self._open.values() if r.kind == kind), None)

    def __len__(self) -> int:
        """How many questions are open."""
        return len(self._open)

    def events(self) -> list[Event]:
        """The events that asked the questions still open, by seq."""
        return sorted((r.event for r in self._open.values()), key=lambda e: e.seq)

    def answer(self, request_id: str, kind: str, value: object) -> None:
        request = self._open.get(request_id)
        if request_id in self._closed or (request is not None and request.future.done()):
            raise FailedPrecondition(f"{kind} request {request_id} was already answered")
        if request is None or request.kind != kind:
            raise NotFound(f"no pending {kind} request {request_id} in this turn")
        request.future.set_result(value)
