"""Requests a turn waits on until a human (or another client) answers them, typed by kind."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kodad.domain import errors
from kodad.domain.errors import FailedPrecondition, NotFound
from kodad.domain.events import Event
from kodad.domain.model import Decision, LoopAction

T = TypeVar("T")


@dataclass(frozen=True)
class ApprovalAnswer:
    decision: Decision
    feedback: str = ""


@dataclass(frozen=True)
class LoopAnswer:
    action: LoopAction
    extra_iterations: int = 0


@dataclass(frozen=True)
class RequestKind(Generic[T]):
    """A kind of question, and (as its type parameter) the type of its answer."""

    name: str


APPROVAL: RequestKind[ApprovalAnswer] = RequestKind("approval")
LOOP: RequestKind[LoopAnswer] = RequestKind("loop")
QUESTION: RequestKind[str] = RequestKind("question")


@dataclass
class PendingRequest(Generic[T]):
    """One open question of a turn and the events that asked it (a sub-agent's question is
    in its own log and in its parent's); the first answer wins."""

    request_id: str
    kind: RequestKind[T]
    asked: tuple[Event, ...]
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PendingRequests:
    """The questions of one turn (and of its sub-agents), by id."""

    def __init__(self) -> None:
        self._open: dict[str, PendingRequest[Any]] = {}
        self._closed: set[str] = set()

    def open(self, request_id: str, kind: RequestKind[T], *asked: Event) -> PendingRequest[T]:
        request = PendingRequest(request_id, kind, asked)
        self._open[request_id] = request
        return request

    def close(self, request_id: str) -> None:
        self._open.pop(request_id, None)
        self._closed.add(request_id)

    def of_kind(self, kind: RequestKind[T]) -> PendingRequest[T] | None:
        return next((r for r in self._open.values() if r.kind is kind), None)

    def __len__(self) -> int:
        """How many questions are open."""
        return len(self._open)

    def events(self, session_id: str) -> list[Event]:
        """The events of `session_id`'s log that asked the questions still open, by seq."""
        asked = (e for r in self._open.values() for e in r.asked if e.session_id == session_id)
        return sorted(asked, key=lambda e: e.seq)

    def answer(self, request_id: str, kind: RequestKind[T], value: T) -> None:
        request = self._open.get(request_id)
        if request_id in self._closed or (request is not None and request.future.done()):
            raise FailedPrecondition(
                f"{kind.name} request {request_id} was already answered",
                reason=errors.REQUEST_ANSWERED,
                metadata={"request_id": request_id},
            )
        if request is None or request.kind is not kind:
            raise NotFound(
                f"no pending {kind.name} request {request_id} in this turn",
                reason=errors.REQUEST_NOT_FOUND,
                metadata={"request_id": request_id},
            )
        request.future.set_result(value)
