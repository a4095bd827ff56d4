"""Both stores (SQLite files and a real PostgreSQL server) through the Store protocol."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kodad.domain.events import (
    PAYLOAD_TYPES,
    ApprovalRequested,
    ApprovalResolved,
    CheckpointTaken,
    ContextUsage,
    Event,
    EventPayload,
    FileChanged,
    FileDiffStat,
    LoopCapReached,
    Notice,
    QueuedTurnRemoved,
    RateLimit,
    RateLimits,
    SessionRewound,
    TextDelta,
    ThinkingDelta,
    TodosUpdated,
    ToolCallFinished,
    ToolCallOutput,
    ToolCallStarted,
    TurnDiff,
    TurnEnded,
    TurnQueued,
    TurnStarted,
    UsageReported,
    UserInputAdded,
    UserQuestion,
)
from kodad.domain.model import (
    ApprovalMode,
    ApprovalRisk,
    Decision,
    FileChangeKind,
    Image,
    Message,
    NoticeLevel,
    ProviderConfig,
    ProviderKind,
    QueuedTurn,
    Role,
    SessionRecord,
    Todo,
    TodoStatus,
    ToolCall,
    ToolResult,
    TurnEndReason,
    Usage,
)
from kodad.store import SqliteStore, Store, TurnRecord, codec, sqlite_file
from kodad.store.base import StaleLease
from kodad.store.postgres import PostgresStore
from kodad.store.postgres_cluster import EVENTS_CHANNEL, NOTICE_BYTES, events_notices
from kodad.store.sqlite_schema import MIGRATIONS
from tests.pg import PostgresCluster


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "db" / "kodad.db")
    await s.open()
    yield s
    await s.close()


async def count_rows(store: Store, table: str) -> int:
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    assert isinstance(store, PostgresStore)
    return int(await store.pool.fetchval(f"SELECT count(*) FROM {table}"))


def session(sid: str, **kw: object) -> SessionRecord:
    return SessionRecord(id=sid, workspace="/w", create_time=1, update_time=1, **kw)  # type: ignore[arg-type]


EVERY_PAYLOAD: list[EventPayload] = [
    TurnStarted("hi ✓", 2),
    TextDelta("t"),
    ThinkingDelta("th"),
    ToolCallStarted("c", "bash", '{"command":"ls"}'),
    ToolCallOutput("c", "out"),
    ToolCallFinished("c", "done", True, True),
    ApprovalRequested("r", "c", "bash", "{}", "run ls", "$ ls", ApprovalRisk.HIGH),
    ApprovalResolved("r", Decision.APPROVE_ALWAYS),
    LoopCapReached(3, 3),
    UsageReported(Usage(1, 2, 3, 4)),
    FileChanged("a/b", FileChangeKind.DELETED),
    Notice(NoticeLevel.WARNING, "careful"),
    Notice(NoticeLevel.WARNING, "retrying", 2, 4, 7000, "rate_limited"),
    RateLimits((RateLimit("requests", 50, 49, "2s"), RateLimit("tokens", 0, -1, ""))),
    TurnEnded(TurnEndReason.FAILED, "auth", "bad key", Usage(5, 6)),
    ContextUsage(1200, 128_000),
    UserQuestion("q", "c", "Which one?", ("a", "b ✓")),
    TodosUpdated((Todo("plan ✓", TodoStatus.COMPLETED), Todo("build", TodoStatus.IN_PROGRESS))),
    UserInputAdded("also ✓", 1),
    TurnQueued("next", 0, 2),
    QueuedTurnRemoved("failed", "limit"),
    CheckpointTaken("abc", "c1", 2, ("big.iso",)),
    TurnDiff(
        (
            FileDiffStat("a.py", FileChangeKind.MODIFIED, 3, 1),
            FileDiffStat("b", FileChangeKind.CREATED, binary=True),
        )
    ),
    SessionRewound("t_1", 0, ("a.py",), 4, False, "def", "abc", "blob"),
]


def test_codec_round_trips_every_payload_kind() -> None:
    assert {p.kind for p in EVERY_PAYLOAD} == set(PAYLOAD_TYPES)
    for payload in EVERY_PAYLOAD:
        assert codec.decode_payload(codec.encode_payload(payload)) == payload


async def test_schema_is_versioned_and_reopens(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    await store.create_session(session("s_1", labels={"a": "b"}))
    await store.close()
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.open()
    got = await store.get_session("s_1")
    assert got is not None and got.labels == {"a": "b"}


async def test_writes_that_queue_together_commit_together_and_a_failing_one_undoes_itself(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    await store.create_session(session("s_1"))
    batches: list[int] = []
    real = sqlite_file._run_batch

    def counted(db: sqlite3.Connection, works: list[Any]) -> list[tuple[bool, object]]:
        batches.append(len(works))
        return real(db, works)

    monkeypatch.setattr(sqlite_file, "_run_batch", counted)
    writes = [store.append_message("s_1", Message(Role.USER, "t", text=str(i))) for i in range(50)]
    writes.insert(25, store.append_message("s_missing", Message(Role.USER, "t", text="x")))
    results = await asyncio.gather(*writes, return_exceptions=True)
    failed = results.pop(25)
    assert isinstance(failed, LookupError) and "s_missing" in str(failed)
    assert [r.index for r in results if isinstance(r, Message)] == list(range(1, 51))
    assert sum(batches) == 51 and len(batches) <= 3  # not one transaction each
    stored = await store.list_messages("s_1")
    assert [m.text for m in stored] == [str(i) for i in range(50)]
    got = await store.get_session("s_1")
    assert got is not None and got.message_count == 50


async def test_point_reads_run_on_the_loop_and_a_busy_database_sends_them_to_the_reader(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    await store.create_session(session("s_1", labels={"a": "b"}))
    await store.enqueue_turn("s_1", QueuedTurn("t_q", "later", (), 5), front=False)
    threaded: list[str] = []
    reader = store._r
    real_fetchall = reader.execute_fetchall

    def counted(sql: str, params: Any = None) -> Any:
        threaded.append(sql)
        return real_fetchall(sql, params)

    monkeypatch.setattr(reader, "execute_fetchall", counted)
    got = await store.get_session("s_1")
    assert got is not None and got.labels == {"a": "b"}
    assert [q.turn_id for q in await store.queued_turns("s_1")] == ["t_q"]
    assert threaded == []  # no round trip to the reader's thread

    class Busy:
        """The loop's connection while another process holds the database (a recovery)."""

        def __init__(self, real: sqlite3.Connection) -> None:
            self.close = real.close

        def execute(self, sql: str, params: Any) -> sqlite3.Cursor:
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error

    assert store._inline is not None
    monkeypatch.setattr(store, "_inline", Busy(store._inline))
    got = await store.get_session("s_1")
    assert got is not None and got.id == "s_1" and got.labels == {"a": "b"}
    assert await store.get_session("s_missing") is None
    assert len(threaded) == 2


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this kodad"):
        await SqliteStore(path).open()


async def test_session_round_trip_and_update(store: Store) -> None:
    record = session(
        "s_1",
        title="t",
        provider=ProviderConfig(ProviderKind.OPENAI_COMPATIBLE, "m", "http://x/v1", "KEY", "", 100),
        approval_mode=ApprovalMode.AUTO,
        loop_cap=9,
        system_prompt="p",
        labels={"k": "v", "z": "1"},
    )
    await store.create_session(record)
    assert await store.get_session("s_1") == record
    record.title, record.labels, record.approval_mode = (
        "new",
        {"only": "this"},
        ApprovalMode.READ_ONLY,
    )
    await store.update_session(record)
    assert await store.get_session("s_1") == record
    assert await store.get_session("s_2") is None


async def test_list_with_cursor_and_labels(store: Store) -> None:
    for i in range(5):
        await store.create_session(session(f"s_{i}", labels={"even": str(i % 2 == 0).lower()}))
    page = await store.list_sessions(limit=2, before_id=None, labels={})
    assert [r.id for r in page] == ["s_4", "s_3"]
    page = await store.list_sessions(limit=10, before_id="s_3", labels={"even": "true"})
    assert [r.id for r in page] == ["s_2", "s_0"]
    assert page[0].labels == {"even": "true"}


async def test_messages_are_indexed_and_forked(store: Store) -> None:
    await store.create_session(session("s_1"))
    user = await store.append_message(
        "s_1", Message(Role.USER, "t1", text="hi", images=(Image("image/png", b"\x00\xff"),))
    )
    call = ToolCall("c1", "bash", "{}")
    assistant = await store.append_message(
        "s_1",
        Message(
            Role.ASSISTANT, "t1", text="x", thinking="y", tool_calls=(call,), usage=Usage(1, 2)
        ),
    )
    tool = await store.append_message(
        "s_1", Message(Role.TOOL, "t1", tool_result=ToolResult("c1", "out", True, True))
    )
    assert (user.index, assistant.index, tool.index) == (1, 2, 3)
    assert await store.list_messages("s_1") == [user, assistant, tool]
    assert await store.list_messages("s_1", after_index=1, limit=1) == [assistant]
    assert (await store.get_session("s_1")).message_count == 3  # type: ignore[union-attr]

    await store.fork_session("s_1", session("s_2", message_count=3))
    assert await store.list_messages("s_2") == [user, assistant, tool]
    again = await store.append_message("s_2", Message(Role.USER, "t2", text="more"))
    assert again.index == 4
    assert len(await store.list_messages("s_1")) == 3

    with pytest.raises(LookupError):
        await store.append_message("s_missing", Message(Role.USER, "t", text="x"))


async def test_a_large_batch_of_events_of_many_sessions_is_stored_whole(store: Store) -> None:
    counts = {"s_a": 1, "s_b": 130, "s_c": 77}  # past one statement's rows, and not a power of 2
    for sid in counts:
        await store.create_session(session(sid))
    events = [
        Event(sid, "t0", seq, 100 + seq, TextDelta(f"{sid} {seq} '\"✓"))
        for seq in range(1, max(counts.values()) + 1)
        for sid, count in counts.items()
        if seq <= count
    ]
    await store.append_events(events)
    for sid, count in counts.items():
        stored = await store.list_events(sid, after_seq=0, limit=1000)
        assert stored == [e for e in events if e.session_id == sid] and len(stored) == count
        got = await store.get_session(sid)
        assert got is not None and got.last_seq == count


def test_a_commit_of_many_sessions_is_announced_in_payloads_postgresql_accepts() -> None:
    last = {f"s_{i:05}_{'x' * 20}": i for i in range(2_000)}
    notices = events_notices(last)
    assert len(notices) > 1 and all(len(n.encode()) <= NOTICE_BYTES < 8000 for n in notices)
    lines = [line.rsplit(" ", 1) for n in notices for line in n.split("\n")]
    assert {sid: int(seq) for sid, seq in lines} == last and len(lines) == len(last)
    assert events_notices({"s_1": 7}) == ["s_1 7"]  # one session: the format it always had


async def test_a_batch_of_events_on_postgresql_is_a_few_statements_whatever_it_holds(
    postgres: PostgresCluster,
) -> None:
    """Every statement of the batch's transaction is a round trip made while its sessions'
    rows are locked: under load a batch holds hundreds of sessions."""
    store = PostgresStore(await postgres.new_database(), pool_size=1, replica_id="r")
    await store.open()
    try:
        sessions = [f"s_{i:03}" for i in range(100)]
        for sid in sessions:
            await store.create_session(session(sid))
            await store.cluster.acquire_lease(sid, "t1")  # each write of it is fenced
        queries: list[str] = []
        async with store.pool.acquire() as conn:  # the pool's one connection
            conn.add_query_logger(lambda q: queries.append(q.query))
        notices: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(store.dsn)
        await listener.add_listener(EVENTS_CHANNEL, lambda *args: notices.put_nowait(args[-1]))
        events = [Event(sid, "t1", seq, 100, TextDelta("x")) for seq in (1, 2) for sid in sessions]
        await store.append_events(events[:1])  # the driver learns the statements' types
        queries.clear()
        await store.append_events(events[1:])
        # BEGIN, fence, events, last seqs, notify, COMMIT: no reset of the pool's.
        assert len(queries) <= 6, queries
        # Each commit is announced in one notification naming each session's last seq.
        assert await asyncio.wait_for(notices.get(), 10) == "s_000 1"
        announced = await asyncio.wait_for(notices.get(), 10)
        assert sorted(announced.split("\n")) == [f"{sid} 2" for sid in sessions]
        await listener.close()
        assert notices.empty()
        for sid in sessions:
            assert await store.list_events(sid, after_seq=0, limit=10) == [
                e for e in events if e.session_id == sid
            ]
            assert (await store.get_session(sid)).last_seq == 2  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_events_turns_and_delete_cascade(store: Store) -> None:
    await store.create_session(session("s_1"))
    events = [Event("s_1", "t0", i + 1, 100 + i, p) for i, p in enumerate(EVERY_PAYLOAD)]
    await store.append_events(events[:5])
    await store.append_events(events[5:])
    assert await store.list_events("s_1", after_seq=0, limit=100) == events
    assert await store.list_events("s_1", after_seq=10, limit=2) == events[10:12]
    assert (await store.get_session("s_1")).last_seq == len(events)  # type: ignore[union-attr]
    with pytest.raises((sqlite3.IntegrityError, StaleLease)):
        await store.append_events([events[0]])  # a seq is written once

    await store.begin_turn(TurnRecord("s_1", "t1", 5))
    assert (await store.get_session("s_1")).active_turn_id == "t1"  # type: ignore[union-attr]
    assert await store.unfinished_turns() == [TurnRecord("s_1", "t1", 5)]
    await store.end_turn(TurnRecord("s_1", "t1", 5, 9, TurnEndReason.COMPLETED, usage=Usage(3, 4)))
    await store.begin_turn(TurnRecord("s_1", "t2", 10))
    await store.end_turn(
        TurnRecord("s_1", "t2", 10, 11, TurnEndReason.CANCELLED, usage=Usage(1, 1))
    )
    got = await store.get_session("s_1")
    # t0's usage came with its turn_ended event, stored with the turn's end.
    assert got is not None and got.active_turn_id == "" and got.usage == Usage(9, 11)
    assert await store.unfinished_turns() == []
    await store.record_file_change("s_1", "t1", "a.txt", FileChangeKind.CREATED, 7)

    assert await store.delete_session("s_1") is True
    assert await store.delete_session("s_1") is False
    for table in ("messages", "events", "turns", "file_changes", "session_labels"):
        assert await count_rows(store, table) == 0, table


async def test_a_turns_start_stores_its_prompt_and_the_sessions_title_in_one_write(
    store: Store,
) -> None:
    await store.create_session(session("s_1"))
    await store.append_message("s_1", Message(Role.USER, "t0", text="earlier"))
    prompt = Message(Role.USER, "t1", text="write the tests")
    stored = await store.begin_turn(TurnRecord("s_1", "t1", 5), prompt, title="Write the tests")
    assert stored is not None and (stored.index, stored.text) == (2, "write the tests")
    got = await store.get_session("s_1")
    assert got is not None
    assert (got.active_turn_id, got.title, got.message_count) == ("t1", "Write the tests", 2)
    assert [m.text for m in await store.list_messages("s_1")] == ["earlier", "write the tests"]
    await store.end_turn(TurnRecord("s_1", "t1", 5, 6, TurnEndReason.COMPLETED))
    # A titled session keeps its title; a turn without a prompt (a compaction) stores none.
    assert await store.begin_turn(TurnRecord("s_1", "t2", 7), title="Another") is None
    got = await store.get_session("s_1")
    assert got is not None and (got.title, got.message_count) == ("Write the tests", 2)


async def test_a_turn_ended_is_stored_with_the_turns_end(store: Store) -> None:
    """A crash between a turn's end and its turn_ended event cannot happen: both are one
    transaction, applied once (a second end changes nothing)."""
    await store.create_session(session("s_1"))
    started = Event("s_1", "t1", 1, 100, TurnStarted("hi", 0))
    ended = Event("s_1", "t1", 2, 110, TurnEnded(TurnEndReason.COMPLETED, usage=Usage(2, 3)))
    await store.append_events([started, ended])
    got = await store.get_session("s_1")
    assert got is not None and got.active_turn_id == "" and got.usage == Usage(2, 3)
    assert await store.unfinished_turns() == []
    await store.end_turn(TurnRecord("s_1", "t1", 100, 120, TurnEndReason.FAILED, usage=Usage(9, 9)))
    got = await store.get_session("s_1")
    assert got is not None and got.usage == Usage(2, 3)  # not counted twice
    # A turn_ended of a turn that is not the session's running one leaves the running one.
    await store.begin_turn(TurnRecord("s_1", "t2", 130))
    late = Event("s_1", "t9", 3, 131, TurnEnded(TurnEndReason.CANCELLED))
    await store.append_events([late])
    assert (await store.get_session("s_1")).active_turn_id == "t2"  # type: ignore[union-attr]


async def test_a_turn_started_is_stored_with_its_turn_row(store: Store) -> None:
    """A crash right after a turn_started commits still leaves a turn recovery finds; a
    turn_started committed after its turn ended does not mark the session running again."""
    await store.create_session(session("s_1"))
    await store.append_events([Event("s_1", "t1", 1, 100, TurnStarted("hi", 0))])
    assert await store.unfinished_turns() == [TurnRecord("s_1", "t1", 100)]
    assert (await store.get_session("s_1")).active_turn_id == "t1"  # type: ignore[union-attr]
    await store.begin_turn(TurnRecord("s_1", "t1", 105))  # the turn's own start wins
    assert await store.unfinished_turns() == [TurnRecord("s_1", "t1", 105)]
    await store.end_turn(TurnRecord("s_1", "t1", 105, 110, TurnEndReason.COMPLETED))

    await store.begin_turn(TurnRecord("s_1", "t2", 120))
    await store.end_turn(TurnRecord("s_1", "t2", 120, 121, TurnEndReason.COMPLETED))
    await store.append_events([Event("s_1", "t2", 2, 119, TurnStarted("fast", 0))])  # late
    assert (await store.get_session("s_1")).active_turn_id == ""  # type: ignore[union-attr]
    assert await store.unfinished_turns() == []


async def test_a_sessions_queue_keeps_its_order_front_and_back(store: Store) -> None:
    await store.create_session(session("s_q"))
    await store.create_session(session("s_other"))
    png = Image("image/png", b"\x89PNG")
    assert await store.enqueue_turn("s_q", QueuedTurn("t_1", "one", (png,), 10), front=False) == 1
    assert (
        await store.enqueue_turn("s_q", QueuedTurn("t_2", "two", (), 11, ("/r",)), front=False) == 2
    )
    assert await store.enqueue_turn("s_q", QueuedTurn("t_0", "zero", (), 12), front=True) == 1
    await store.enqueue_turn("s_other", QueuedTurn("t_x", "x", (), 13), front=False)
    assert [q.turn_id for q in await store.queued_turns("s_q")] == ["t_0", "t_1", "t_2"]
    assert sorted(await store.queued_sessions()) == ["s_other", "s_q"]
    taken = await store.take_queued_turn("s_q")
    assert taken == QueuedTurn("t_0", "zero", (), 12)
    assert await store.remove_queued_turn("s_q", "t_2") is True
    assert await store.remove_queued_turn("s_q", "t_2") is False
    (left,) = await store.queued_turns("s_q")
    assert left == QueuedTurn("t_1", "one", (png,), 10)
    assert await store.clear_queue("s_q") == ["t_1"]
    assert await store.take_queued_turn("s_q") is None
    await store.delete_session("s_other")  # its queue goes with it
    assert await store.queued_sessions() == []
