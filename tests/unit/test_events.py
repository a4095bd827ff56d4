"""The event log: gap-free seqs, publication only after storage, bounded subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kodad.domain.events import Event, Notice, TextDelta, ThinkingDelta, ToolCallOutput
from kodad.domain.model import NoticeLevel, SessionRecord
from kodad.engine.eventlog import (
    COALESCE_AFTER,
    COALESCE_AFTER_ALL,
    COALESCED_CHARS,
    EventLog,
    EventWriter,
)
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
    await writer.flush()  # the writer is not started here: the test commits
    assert (await anext(feed)).seq == 1  # the feed is now live

    for i in range(500):
        log.emit("t", Notice(NoticeLevel.INFO, str(i)))
        if i % 50 == 0:
            await writer.flush()
            assert max(s._queue.qsize() for s in log._subscribers) <= 11
    await writer.flush()
    assert max(s._queue.qsize() for s in log._subscribers) <= 11

    rest = [await anext(feed) for _ in range(500)]
    assert [e.seq for e in rest] == list(range(2, 502))
    assert [e.payload for e in rest] == [Notice(NoticeLevel.INFO, str(i)) for i in range(500)]
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
        flooding.emit("t", Notice(NoticeLevel.INFO, "x"))
    await flooding.backpressure()
    assert flooding.stored_seq == 0  # within its bound: no wait, no commit
    flooding.emit("t", Notice(NoticeLevel.INFO, "x"))
    await flooding.backpressure()
    assert flooding.stored_seq == 101  # past it: the producer waited for the commit
    # Everyone's backlog counts too: a quiet session past the total bound waits as well.
    for _ in range(100):
        flooding.emit("t", Notice(NoticeLevel.INFO, "x"))
    for _ in range(51):
        other.emit("t", Notice(NoticeLevel.INFO, "y"))
    await other.backpressure()
    assert other.stored_seq == 51 and flooding.stored_seq == 201


async def test_deltas_queued_behind_a_commit_are_coalesced_and_replayed_as_seen(
    store: SqliteStore,
) -> None:
    writer = EventWriter(store)  # not started: events wait until a flush
    log = EventLog("s_1", 0, writer)
    subscription = log.subscribe()
    for i in range(COALESCE_AFTER - 1):
        log.emit("t", Notice(NoticeLevel.INFO, str(i)))
    for i in range(1000):
        log.emit("t", TextDelta(f"{i},"))
    log.emit("t", ThinkingDelta("hm"))
    log.emit("t", ThinkingDelta("m"))
    log.emit("t", ToolCallOutput("c_1", "a"))
    log.emit("t", ToolCallOutput("c_2", "b"))  # another call: not merged
    log.emit("t", ToolCallOutput("c_2", "c"))
    log.emit("t", TextDelta("x"), subagent_session_id="s_child", parent_call_id="c_3")
    log.emit("t2", TextDelta("y"))  # another turn: not merged
    await writer.flush()
    stored = await store.list_events("s_1", after_seq=0, limit=100)
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert [e.payload for e in stored][COALESCE_AFTER - 1 :] == [
        TextDelta("".join(f"{i}," for i in range(1000))),  # merged once 16 events wait
        ThinkingDelta("hmm"),
        ToolCallOutput("c_1", "a"),
        ToolCallOutput("c_2", "bc"),
        TextDelta("x"),
        TextDelta("y"),
    ]
    assert stored[-2].subagent_session_id == "s_child"
    live: list[Event] = []
    while len(live) < len(stored):
        item = await subscription.get()
        assert isinstance(item, Event)
        live.append(item)
    assert live == stored  # what a live reader saw is what a replay shows
    assert log.assigned_seq == log.stored_seq == len(stored)


async def test_deltas_are_not_coalesced_while_the_store_keeps_up(store: SqliteStore) -> None:
    writer = EventWriter(store)
    log = EventLog("s_1", 0, writer)
    texts = [str(i) for i in range(COALESCE_AFTER)]
    for text in texts:  # a burst shorter than the threshold
        log.emit("t", TextDelta(text))
    await writer.flush()
    log.emit("t", TextDelta("after"))
    await writer.flush()
    stored = await store.list_events("s_1", after_seq=0, limit=100)
    assert [e.payload for e in stored] == [TextDelta(t) for t in [*texts, "after"]]


async def test_many_sessions_each_a_little_behind_are_coalesced_too(store: SqliteStore) -> None:
    ids = [f"f_{i}" for i in range(3)] + [f"m_{i}" for i in range(COALESCE_AFTER_ALL)]
    for session_id in ids:
        await store.create_session(SessionRecord(id=session_id, workspace="/w"))
    writer = EventWriter(store)  # not started: events wait until a flush
    few = [EventLog(f"f_{i}", 0, writer) for i in range(3)]
    for log in few:  # a handful of sessions a delta ahead: the store keeps up
        log.emit("t", TextDelta("a"))
        log.emit("t", TextDelta("b"))
    assert writer.backlog == 6
    many = [EventLog(f"m_{i}", 0, writer) for i in range(COALESCE_AFTER_ALL)]
    for log in many:
        log.emit("t", TextDelta("a"))
    for log in many:  # everyone's events now wait: each session's next delta merges
        log.emit("t", TextDelta("b"))
    assert writer.backlog == 6 + COALESCE_AFTER_ALL
    published = [log.subscribe() for log in many[:2]]
    await writer.flush()
    assert [e.payload for e in await store.list_events("f_0", after_seq=0, limit=9)] == [
        TextDelta("a"),
        TextDelta("b"),
    ]
    for log, subscription in zip(many, published, strict=False):
        stored = await store.list_events(log.session_id, after_seq=0, limit=9)
        assert [(e.seq, e.payload) for e in stored] == [(1, TextDelta("ab"))]
        assert await subscription.get() == stored[0]
    assert all(log.assigned_seq == log.stored_seq == 1 for log in many)


async def test_a_coalesced_event_stays_bounded(store: SqliteStore) -> None:
    writer = EventWriter(store)
    log = EventLog("s_1", 0, writer)
    chunk = "z" * 1000
    for _ in range(COALESCE_AFTER):
        log.emit("t", Notice(NoticeLevel.INFO, "wait"))
    for _ in range(3 * COALESCED_CHARS // 1000):
        log.emit("t", TextDelta(chunk))
    await writer.flush()
    stored = await store.list_events("s_1", after_seq=0, limit=100)
    assert all(
        len(e.payload.text) <= COALESCED_CHARS for e in stored if isinstance(e.payload, TextDelta)
    )
    assert "".join(e.payload.text for e in stored if isinstance(e.payload, TextDelta)) == chunk * (
        3 * COALESCED_CHARS // 1000
    )
    assert len(stored) <= COALESCE_AFTER + 4


async def test_a_follower_reads_the_store_only_for_what_was_published_before_it(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real = store.list_events

    async def counted(session_id: str, *, after_seq: int, limit: int) -> list[Event]:
        reads.append(after_seq)
        return await real(session_id, after_seq=after_seq, limit=limit)

    monkeypatch.setattr(store, "list_events", counted)
    writer = EventWriter(store)
    log = EventLog("s_1", 0, writer)
    log.emit("t", TextDelta("a"))
    await writer.flush()  # published: a new follower needs the store for it
    log.emit("t", TextDelta("b"))  # not stored yet: it comes live
    late = log.follow(store, 0)
    first = await anext(late)
    await writer.flush()
    assert [first.seq, (await anext(late)).seq] == [1, 2] and reads == [0]

    reads.clear()
    fresh = log.follow(store, log.assigned_seq)  # a turn's own stream, before its first event
    log.emit("t", TextDelta("c"))  # emitted, not stored: the follower subscribes before the
    pending = asyncio.ensure_future(anext(fresh))  # commit publishes it (tasks run in order)
    await writer.flush()
    assert (await pending).seq == 3 and reads == []  # no store read at all
    await late.aclose()
    await fresh.aclose()
