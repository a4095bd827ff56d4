"""Requests a turn waits on until a human (or another client) answers them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kodad.engine.errors import FailedPrecondition, NotFound

T = TypeVar("T")


@dataclass
class PendingRequest(Generic[T]):
    """One open question of a turn; the first answer wins."""

    request_id: str
    kind: str
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PendingRequests:
    """The open requests of one turn, by id. Kinds: "loop" (and "approval" later)."""

    def __init__(self) -> None:
        self._open: dict[str, PendingRequest[object]] = {}

    def open(self, request_id: str, kind: str) -> PendingRequest[object]:
        request: PendingRequest[object] = PendingRequest(request_id, kind)
        self._open[request_id] = request
        return request

    def close(self, request: PendingRequest[object]) -> None:
        self._open.pop(request.request_id, None)

    def of_kind(self, kind: str) -> PendingRequest[object] | None:
        return next((r for r in self._open.values() if r.kind == kind), None)

    def answer(self, request_id: str, kind: str, value: object) -> None:
        request = self._open.get(request_id)
        if request is None or request.kind != kind:
            raise NotFound(f"no pending {kind} request {request_id!r} in this turn")
        if request.future.done():
            raise FailedPrecondition(f"{kind} request {request_id!r} was already answered")
        request.future.set_result(value)
