"""The per-session event log: seq assignment, group commit, and fan-out after commit.

An event reaches subscribers only once it is stored, so a seq a client has seen always names
the same event, also after a crash and restart. Events queue while a commit runs and go
together in the next one (group commit), so persistence costs about one commit of latency
and no per-event transaction.

Deltas are coalesced while the store is behind: once COALESCE_AFTER events of a session (or
COALESCE_AFTER_ALL of all sessions) wait for a commit, a text or thinking delta, or a
command's output, that follows one of the same block still queued is merged into it (same
seq, longer text). Nobody has seen a queued event, so this changes no seq anyone knows, and
the merged event is published when the first would have been; when the store keeps up
nothing is merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

from kodad import metrics
from kodad.domain.events import Event, EventPayload, TextDelta, ThinkingDelta, ToolCallOutput
from kodad.domain.model import now_us
from kodad.store.base import StaleLease, Store

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.2


SUBSCRIBER_BUFFER = 4096
REPLAY_PAGE = 1000
# A producer (provider stream, command output) that gets this far ahead of the store, in its
# session or in all, waits for a commit: a flood slows the flooding turn, and memory stays
# bounded, instead of queueing without end.
SESSION_BACKLOG = 2048
TOTAL_BACKLOG = 20_000
# The same in characters of delta text (coalesced deltas are few events but may be long).
SESSION_BACKLOG_CHARS = 16 * 1024
# How many of a session's events wait for a commit before its deltas are coalesced...
COALESCE_AFTER = 16
# ...or how many events of all sessions: a thousand streams each one token ahead of the
# store are as far behind as one stream sixteen tokens ahead.
COALESCE_AFTER_ALL = 512
# The most text one coalesced event holds.
COALESCED_CHARS = 64 * 1024


def _continuation(
    queued: Event, payload: EventPayload, turn_id: str, tags: tuple[str, str]
) -> str | None:
    """The text `payload` adds to `queued` when both are deltas of one block (the same kind,
    turn, sub-agent and call), else None."""
    if queued.turn_id != turn_id or (queued.subagent_session_id, queued.parent_call_id) != tags:
        return None
    match queued.payload, payload:
        case (TextDelta(), TextDelta(text)) | (ThinkingDelta(), ThinkingDelta(text)):
            return text
        case ToolCallOutput(call), ToolCallOutput(other, text, 0) if call == other:
            return text
        case _:
            return None


def _with_text(event: Event, text: str) -> Event:
    payload = event.payload
    if isinstance(payload, ToolCallOutput):
        return dataclasses.replace(event, payload=dataclasses.replace(payload, chunk=text))
    assert isinstance(payload, TextDelta | ThinkingDelta)
    return dataclasses.replace(event, payload=dataclasses.replace(payload, text=text))


def _text(payload: EventPayload) -> str:
    if isinstance(payload, ToolCallOutput):
        return payload.chunk
    return payload.text if isinstance(payload, TextDelta | ThinkingDelta) else ""


class Overflow:
    """Marks a subscription that fell more than its buffer behind; its reader catches up
    from the store (every published event is stored) and subscribes again."""


OVERFLOW = Overflow()


class Subscription:
    """A bounded live feed of one session's events. `get()` returns an Event, OVERFLOW when
    the reader fell behind (the buffer was dropped), or None once the feed closes."""

    def __init__(self, on_close: Callable[[Subscription], None], limit: int) -> None:
        self._queue: asyncio.Queue[Event | Overflow | None] = asyncio.Queue()
        self._on_close = on_close
        self._limit = limit
        self._overflowed = False

    def put(self, event: Event | None) -> None:
        if self._overflowed and event is not None:
            return
        if event is not None and self._queue.qsize() >= self._limit:
            while not self._queue.empty():  # memory stays bounded; the store has them all
                self._queue.get_nowait()
            self._overflowed = True
            self._queue.put_nowait(OVERFLOW)
            return
        self._queue.put_nowait(event)

    async def get(self) -> Event | Overflow | None:
        return await self._queue.get()

    def close(self) -> None:
        self._on_close(self)


class EventLog:
    """One session's event log. Seqs are assigned here, in memory, gap-free from 1."""

    def __init__(self, session_id: str, last_seq: int, writer: EventWriter) -> None:
        self.session_id = session_id
        self.assigned_seq = last_seq
        self.stored_seq = last_seq
        self._writer = writer
        self._subscribers: set[Subscription] = set()
        self._catching_up = asyncio.Lock()
        # Set when another replica took the session over: nothing more is stored here.
        self.fenced = False

    def emit(
        self,
        turn_id: str,
        payload: EventPayload,
        *,
        subagent_session_id: str = "",
        parent_call_id: str = "",
    ) -> Event:
        """Assigns the next seq and queues the event; subscribers get it once it is stored.
        A fenced log stores nothing more (the session's new owner continues it)."""
        if self.fenced:
            return Event(self.session_id, turn_id, 0, now_us(), payload)
        tags = (subagent_session_id, parent_call_id)
        if (
            (queued := self._writer.last_queued(self)) is not None
            and (text := _continuation(queued, payload, turn_id, tags)) is not None
            and self._writer.extend_last(self, text)
        ):
            return queued  # its text is longer once stored
        self.assigned_seq += 1
        event = Event(
            self.session_id,
            turn_id,
            self.assigned_seq,
            now_us(),
            payload,
            subagent_session_id,
            parent_call_id,
        )
        self._writer.append(self, event)
        return event

    async def catch_up(self, store: Store) -> None:
        """Publishes the events other replicas stored after this log's last one, and
        continues the seqs after them. Does nothing while this replica has events of the
        session in flight (then it owns the session's turn and the log)."""
        async with self._catching_up:
            self.fenced = False
            while self.assigned_seq == self.stored_seq:
                page = await store.list_events(
                    self.session_id, after_seq=self.stored_seq, limit=REPLAY_PAGE
                )
                if self.assigned_seq != self.stored_seq:
                    return
                for event in page:
                    self.assigned_seq = event.seq
                    self.publish(event)
                if len(page) < REPLAY_PAGE:
                    return

    def fence(self) -> None:
        """Another replica took the session over: its events stop here and every reader's
        feed ends (they can follow it on any replica)."""
        self.fenced = True
        self._writer.discard(self)
        self.assigned_seq = self.stored_seq  # what was not stored never happened
        self.close()

    def publish(self, event: Event) -> None:
        self.stored_seq = event.seq
        for subscriber in self._subscribers:
            subscriber.put(event)

    async def flush(self) -> None:
        """Returns once every event emitted so far is stored and published."""
        await self._writer.flush()

    async def backpressure(self) -> None:
        """Waits for a commit when this session's unstored events, or everyone's, passed
        their bound; returns at once otherwise. Producers call it after emitting."""
        if (
            self.assigned_seq - self.stored_seq > SESSION_BACKLOG
            or self._writer.backlog > TOTAL_BACKLOG
            or self._writer.queued_chars(self) > SESSION_BACKLOG_CHARS
        ):
            await self._writer.flush()

    def subscribe(self, limit: int = SUBSCRIBER_BUFFER) -> Subscription:
        subscription = Subscription(self._subscribers.discard, limit)
        self._subscribers.add(subscription)
        return subscription

    async def follow(
        self, store: Store, after_seq: int, *, buffer: int = SUBSCRIBER_BUFFER
    ) -> AsyncIterator[Event]:
        """Every event with seq > `after_seq`, in order, without gaps or repeats: stored ones
        first, then live ones; a reader that falls `buffer` events behind catches up from
        the store. Ends when the log closes."""
        last = after_seq
        while True:
            # Publishing stores first, then hands the event to every subscriber at once: so
            # what comes after `stored_seq` reaches this subscription, and only what came
            # before it needs the store (none for a turn's own stream, which subscribes
            # before its first event is stored).
            subscription = self.subscribe(buffer)
            try:
                while last < self.stored_seq:
                    page = await store.list_events(
                        self.session_id, after_seq=last, limit=REPLAY_PAGE
                    )
                    for event in page:
                        yield event
                        last = event.seq
                    if len(page) < REPLAY_PAGE:
                        break
                while True:
                    item = await subscription.get()
                    if item is None:
                        return
                    if isinstance(item, Overflow):
                        break
                    if item.seq > last:
                        last = item.seq
                        yield item
            finally:
                subscription.close()

    def close(self) -> None:
        """Ends every subscription (the session is gone or the service stops)."""
        for subscriber in self._subscribers:
            subscriber.put(None)
        self._subscribers.clear()


class EventWriter:
    """Stores the events of every session in order, one transaction per batch, then
    publishes each batch to its logs' subscribers."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._buffer: list[tuple[EventLog, Event]] = []
        # Where each log's last event waits in the buffer (until a commit takes it), and how
        # many of its events wait.
        self._last: dict[EventLog, int] = {}
        self._queued: dict[EventLog, int] = {}
        # Text merged into a log's last queued event, joined once (merging stays linear).
        self._extra: dict[EventLog, list[str]] = {}
        self._extra_chars: dict[EventLog, int] = {}
        self._chars: dict[EventLog, int] = {}  # delta text each log has waiting
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    def discard(self, log: EventLog) -> None:
        """Drops the events of `log` not yet stored (it was fenced)."""
        self._seal_all()
        self._buffer = [(lg, ev) for lg, ev in self._buffer if lg is not log]

    def _seal(self, log: EventLog) -> None:
        """Writes the text merged into `log`'s last queued event into it."""
        extra = self._extra.pop(log, None)
        self._extra_chars.pop(log, None)
        if extra:
            index = self._last[log]
            event = self._buffer[index][1]
            self._buffer[index] = (log, _with_text(event, _text(event.payload) + "".join(extra)))

    def _seal_all(self) -> None:
        """Seals every log's last event; nothing more merges into what is queued now."""
        for log in list(self._extra):
            self._seal(log)
        self._last.clear()
        self._queued.clear()
        self._chars.clear()

    def queued_chars(self, log: EventLog) -> int:
        """Characters of delta text `log` has waiting for a commit."""
        return self._chars.get(log, 0)

    def append(self, log: EventLog, event: Event) -> None:
        self._seal(log)
        if chars := len(_text(event.payload)):
            self._chars[log] = self._chars.get(log, 0) + chars
        self._last[log] = len(self._buffer)
        self._queued[log] = self._queued.get(log, 0) + 1
        self._buffer.append((log, event))
        self._wake.set()

    def last_queued(self, log: EventLog) -> Event | None:
        """The last event of `log` waiting for a commit (nobody has seen it), once at least
        COALESCE_AFTER of its events, or COALESCE_AFTER_ALL of everyone's, wait; else None."""
        index = self._last.get(log)
        if index is None or (
            self._queued.get(log, 0) < COALESCE_AFTER and len(self._buffer) < COALESCE_AFTER_ALL
        ):
            return None
        return self._buffer[index][1]

    def extend_last(self, log: EventLog, text: str) -> bool:
        """Appends `text` to the last queued event of `log` (a merged delta, the same seq),
        unless that would pass COALESCED_CHARS; whether it did."""
        queued = self._buffer[self._last[log]][1]
        chars = len(_text(queued.payload)) + self._extra_chars.get(log, 0) + len(text)
        if chars > COALESCED_CHARS:
            return False
        self._extra.setdefault(log, []).append(text)
        self._extra_chars[log] = self._extra_chars.get(log, 0) + len(text)
        self._chars[log] = self._chars.get(log, 0) + len(text)
        metrics.EVENTS_COALESCED.inc()
        return True

    @property
    def backlog(self) -> int:
        """Events appended and not yet taken into a commit."""
        return len(self._buffer)

    async def flush(self) -> None:
        """Stores and publishes everything appended before the call."""
        async with self._lock:
            self._seal_all()
            batch, self._buffer = self._buffer, []
            while batch:
                try:
                    await self._store.append_events([event for _, event in batch])
                    break
                except StaleLease as e:  # drop that session's events: it has a new owner
                    log.error("%s; its unstored events are dropped", e)
                    for event_log, _ in batch:
                        if event_log.session_id == e.session_id:
                            event_log.fence()
                    batch = [(lg, ev) for lg, ev in batch if lg.session_id != e.session_id]
                except BaseException:
                    self._seal_all()  # merge nothing more into what is queued now
                    self._buffer[:0] = batch  # keep them, in order, for the next attempt
                    raise
            for event_log, event in batch:
                event_log.publish(event)
            metrics.EVENTS.inc(len(batch))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("storing events failed; retrying")
                self._wake.set()
                await asyncio.sleep(RETRY_DELAY_S)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
