"""What a turn asks a human and waits for: approvals (through its gate), the loop cap and
ask_user questions. The first answer wins; every log the question went to shows it."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from kodad.domain.events import Event, EventPayload, LoopCapReached, UserQuestion
from kodad.domain.ids import new_id
from kodad.engine import pending
from kodad.engine.pending import LoopAnswer, PendingRequests, RequestKind

T = TypeVar("T")


class Questions:
    """Part of Turn: it provides `pending` and `_emit_all`."""

    pending: PendingRequests

    def _emit_all(self, payload: EventPayload) -> tuple[Event, ...]:
        raise NotImplementedError

    def ask(
        self, request_id: str, kind: RequestKind[T], payload: EventPayload
    ) -> asyncio.Future[T]:
        """Emits a question and opens it under its event in every log (re-sent to clients
        watching either session)."""
        return self.pending.open(request_id, kind, *self._emit_all(payload)).future

    async def _ask_user(self, call_id: str, question: str, choices: tuple[str, ...]) -> str:
        """Emits user_question and waits for the user's answer (the first one wins)."""
        request_id = new_id("q")
        asked = UserQuestion(request_id, call_id, question, choices)
        return await self._answer(request_id, pending.QUESTION, asked)

    async def _ask_loop(self, iterations: int, cap: int) -> LoopAnswer:
        request_id = f"loop-{iterations}"
        return await self._answer(request_id, pending.LOOP, LoopCapReached(iterations, cap))

    async def _answer(self, request_id: str, kind: RequestKind[T], payload: EventPayload) -> T:
        """Asks and waits for the first answer."""
        try:
            return await self.ask(request_id, kind, payload)
        finally:
            self.pending.close(request_id)
