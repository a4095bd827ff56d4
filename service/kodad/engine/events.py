"""The per-session event log: seq assignment, live fan-out, group-committed persistence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from kodad.engine.model import Event, EventPayload, now_us
from kodad.store.base import Store

log = logging.getLogger(__name__)


class EventWriter:
    """Group-commits appended events: one transaction per short interval, in order.

    `flush()` returns once everything appended before the call is durable.
    """

    def __init__(self, store: Store, *, interval_s: float = 0.005) -> None:
        self._store = store
        self._interval_s = interval_s
        self._buffer: list[Event] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    def append(self, event: Event) -> None:
        self._buffer.append(event)
        self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                await self._store.append_events(batch)
            except BaseException:
                self._buffer[:0] = batch  # keep them for the next attempt, in order
                raise

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Gather the events of a short interval into one transaction.
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("writing events failed; retrying")
                self._wake.set()
                await asyncio.sleep(0.5)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


class Subscription:
    """A live feed of one session's events; `get()` returns None once the feed closes."""

    def __init__(self, on_close: Callable[[Subscription], None]) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._on_close = on_close

    def put(self, event: Event | None) -> None:
        self._queue.put_nowait(event)

    async def get(self) -> Event | None:
        return await self._queue.get()

    def close(self) -> None:
        self._on_close(self)


class EventLog:
    """One session's event log. Seqs are assigned here, in memory, gap-free from 1."""

    def __init__(self, session_id: str, last_seq: int, writer: EventWriter) -> None:
        self.session_id = session_id
        self.last_seq = last_seq
        self._writer = writer
        self._subscribers: set[Subscription] = set()

    def record(self, turn_id: str, payload: EventPayload) -> Event:
        """Assigns the next seq and queues the event for the store, without publishing it."""
        self.last_seq += 1
        event = Event(self.session_id, turn_id, self.last_seq, now_us(), payload)
        self._writer.append(event)
        return event

    def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber.put(event)

    def emit(self, turn_id: str, payload: EventPayload) -> Event:
        """Records and publishes at once; the store catches up within the group interval."""
        event = self.record(turn_id, payload)
        self.publish(event)
        return event

    async def flush(self) -> None:
        await self._writer.flush()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self._subscribers.discard)
        self._subscribers.add(subscription)
        return subscription

    @property
    def watched(self) -> bool:
        return bool(self._subscribers)

    def close(self) -> None:
        """Ends every subscription (the session is gone)."""
        for subscriber in self._subscribers:
            subscriber.put(None)
        self._subscribers.clear()
