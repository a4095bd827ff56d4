"""The event log: gap-free seqs, publication only after storage, bounded subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kodad.domain.events import TextDelta
from kodad.domain.model import SessionRecord
from kodad.engine.eventlog import EventLog, EventWriter
from kodad.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "kodad.db")
    await s.open()
    await s.create_session(SessionRecord(id="s_1", workspace="/w"))
    yield s
    await s.close()


async def test_events_are_published_only_once_stored(store: SqliteStore) -> None:
    writer = EventWriter(store)
    log = EventLog("s_1", 0, writer)
    subscription = log.subscribe()
    event = log.emit("t", TextDelta("a"))
    assert log.stored_seq == 0
    assert await store.list_events("s_1", after_seq=0, limit=10) == []
    await writer.flush()
    assert await store.list_events("s_1", after_seq=0, limit=10) == [event]
    assert await subscription.get() == event
    assert log.stored_seq == 1


async def test_a_reader_that_falls_behind_stays_bounded_and_catches_up(store: SqliteStore) -> None:
    writer = EventWriter(store)
    log = EventLog("s_1", 0, writer)
    log.emit("t", TextDelta("first"))
    feed = log.follow(store, 0, buffer=10)
    assert (await anext(feed)).seq == 1  # the feed is now live

    for i in range(500):
        log.emit("t", TextDelta(str(i)))
        if i % 50 == 0:
            await writer.flush()
            assert max(s._queue.qsize() for s in log._subscribers) <= 11
    await writer.flush()
    assert max(s._queue.qsize() for s in log._subscribers) <= 11

    rest = [await anext(feed) for _ in range(500)]
    assert [e.seq for e in rest] == list(range(2, 502))
    assert [e.payload for e in rest] == [TextDelta(str(i)) for i in range(500)]
    await feed.aclose()
    assert not log._subscribers


async def test_a_producer_far_ahead_of_the_store_waits_for_a_commit(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kodad.engine import eventlog as events

    monkeypatch.setattr(events, "SESSION_BACKLOG", 100)
    monkeypatch.setattr(events, "TOTAL_BACKLOG", 150)
    await store.create_session(SessionRecord(id="s_2", workspace="/w"))
    writer = EventWriter(store)  # not started: only backpressure commits here
    flooding, other = EventLog("s_1", 0, writer), EventLog("s_2", 0, writer)
    for _ in range(100):
        flooding.emit("t", TextDelta("x"))
    await flooding.backpressure()
    assert flooding.stored_seq == 0  # within its bound: no wait, no commit
    flooding.emit("t", TextDelta("x"))
    await flooding.backpressure()
    assert flooding.stored_seq == 101  # past it: the producer waited for the commit
    # Everyone's backlog counts too: a quiet session past the total bound waits as well.
    for _ in range(100):
        flooding.emit("t", TextDelta("x"))
    for _ in range(51):
        other.emit("t", TextDelta("y"))
    await other.backpressure()
    assert other.stored_seq == 51 and flooding.stored_seq == 201
