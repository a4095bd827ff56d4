"""The SQLite file: its connections (the loop's own, which writes and makes point reads, and
a reader and a writer on threads of their own), its schema migrations, transactions, and the
statements the store shares."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

import aiosqlite

from kodad.store import codec
from kodad.store.base import uninterruptible
from kodad.store.sqlite_schema import MIGRATIONS

log = logging.getLogger(__name__)
T = TypeVar("T")

# A turn's row, once: begin_turn and the turn_started event both write it.
INSERT_TURN = (
    "INSERT INTO turns (session_id, turn_id, start_time, usage) VALUES (?,?,?,?)"
    " ON CONFLICT (session_id, turn_id) DO NOTHING"
)
# begin_turn's, whose start time is the turn's own.
BEGIN_TURN = INSERT_TURN.replace("DO NOTHING", "DO UPDATE SET start_time = excluded.start_time")
# Names a session that has no title yet (begin_turn, after its first prompt).
SET_TITLE = "UPDATE sessions SET title = ? WHERE id = ? AND title = ''"
# The session runs the turn, unless that turn's end is already stored.
MARK_RUNNING = (
    "UPDATE sessions SET active_turn_id = ?1 WHERE id = ?2 AND NOT EXISTS (SELECT 1 FROM turns"
    " WHERE session_id = ?2 AND turn_id = ?1 AND end_time > 0)"
)

LABELS_OBJECT = (
    "(SELECT json_group_object(l.key, l.value) FROM session_labels l WHERE l.session_id = s.id)"
)
SETTINGS = ", ".join(f"{c}=?" for c in codec.SESSION_SETTINGS)
PLACEHOLDERS = ", ".join("?" * (codec.SESSION_COLUMNS.count(",") + 1))
SELECT_SESSION = "s." + codec.SESSION_COLUMNS.replace(", ", ", s.") + ", " + LABELS_OBJECT


# Works in one transaction at most: a batch holds up the loop while it runs.
MAX_BATCH = 256
# A checkpoint (on the writer's thread, not the loop) after this many commits.
CHECKPOINT_EVERY = 64


def _busy(e: sqlite3.OperationalError) -> bool:
    """Another process holds the database (its write lock, or a recovery)."""
    return e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _run_batch(
    db: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], object]]
) -> list[tuple[bool, object]]:
    """One transaction of `works` (on the writer's thread), each in a savepoint; each one's
    (True, result) or (False, exception)."""
    outcomes: list[tuple[bool, object]] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            db.execute("SAVEPOINT work")
            try:
                outcomes.append((True, work(db)))
            except Exception as e:
                db.execute("ROLLBACK TO work")
                outcomes.append((False, e))
            db.execute("RELEASE work")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return outcomes


class SqliteFile:
    """A SQLite database file in WAL mode, migrated to this kodad's schema when opened.

    Writes and point reads run on the loop's own connection, in the loop's thread. On a
    thread of its own, each SQLite statement hands the GIL over and back, and on a busy loop
    each hand-over waits for the interpreter's switch interval (5 ms): under a thousand
    streaming turns, a batch of writes took seconds that way, and every event waited for it.
    Long reads (pages, histories, event ranges) go to the reader's thread; checkpoints, which
    sync the disk, to the writer's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        # Writes waiting for the next transaction, and the task that commits them.
        self._queued: list[
            tuple[Callable[[sqlite3.Connection], object], asyncio.Future[object]]
        ] = []
        self._committer: asyncio.Task[None] | None = None
        self._commits = 0
        self._checkpointer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        try:
            await self._migrate(self._writer)
        except BaseException:
            await self.close()
            raise
        self._reader = await self._connect()
        inline = sqlite3.connect(self.path, isolation_level=None)
        for pragma in (
            "synchronous=NORMAL",
            "foreign_keys=ON",
            # A busy database sends the work to a thread, which waits there, not the loop.
            "busy_timeout=0",
            # Checkpoints run on the writer's thread (_checkpoint), not in a commit here.
            "wal_autocheckpoint=0",
        ):
            inline.execute(f"PRAGMA {pragma}")
        self._inline = inline

    async def close(self) -> None:
        if self._committer is not None:  # what was written before the close is committed
            await asyncio.shield(self._committer)
        if self._checkpointer is not None:
            await asyncio.shield(self._checkpointer)
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this kodad "
                f"({len(MIGRATIONS)}); upgrade kodad"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("migrating %s to schema version %d", self.path, target)
            await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={target};\nCOMMIT;")

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    async def _lookup(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        """The rows of a point read (a few indexed rows), read on the loop's own connection.

        Such a read takes a few microseconds; a round trip to the reader's thread takes about
        100, and on a busy loop it waits for the GIL as well (a GetSession under load took
        50 ms that way). WAL readers do not wait for the writer: only a database that is
        busy (a recovery, say) sends the read to the reader's thread, to wait there."""
        if self._inline is None:
            raise RuntimeError("store is not open")
        try:
            return self._inline.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
        return list(await self._r.execute_fetchall(sql, params))

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `work` atomically in a transaction and returns once that transaction is
        committed.

        Writes group-commit: the works queued in one turn of the loop go together in one
        transaction (at most MAX_BATCH), each in its own savepoint (a work that raises undoes
        only itself). A thousand turns starting at once are a few transactions, not
        thousands, each waiting behind the others. A work whose caller was cancelled before
        its batch began does not run."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queued.append((work, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="sqlite-writer")
        return cast(T, await future)

    async def _commit_queued(self) -> None:
        while self._queued:
            await asyncio.sleep(0)  # what the rest of this turn of the loop writes goes along
            live = [(w, f) for w, f in self._queued if not f.done()]
            batch, self._queued = live[:MAX_BATCH], live[MAX_BATCH:]
            if not batch:
                continue
            try:
                outcomes = await self._commit([w for w, _ in batch])
            except BaseException as e:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    raise
                continue
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if not future.done():
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(cast(BaseException, value))
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY == 0 and (
                self._checkpointer is None or self._checkpointer.done()
            ):
                self._checkpointer = asyncio.create_task(self._checkpoint(), name="checkpoint")

    async def _commit(
        self, works: list[Callable[[sqlite3.Connection], object]]
    ) -> list[tuple[bool, object]]:
        """One transaction of `works`: on the loop's connection, or on the writer's thread
        (which waits for it) while another process holds the database."""
        if self._inline is None:
            raise RuntimeError("store is not open")
        try:
            return _run_batch(self._inline, works)
        except sqlite3.OperationalError as e:  # from BEGIN: no work ran
            if not _busy(e):
                raise
        conn = self._w
        outcomes: list[tuple[bool, object]] = await conn._execute(_run_batch, conn._conn, works)  # type: ignore[no-untyped-call]
        return outcomes

    async def _checkpoint(self) -> None:
        """Copies the committed log into the database file, as far as readers allow
        (PASSIVE: it waits for no one), on the writer's thread: it syncs the disk."""
        try:
            await self._w.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (sqlite3.Error, RuntimeError, ValueError) as e:  # the next one tries again
            log.warning("checkpoint of %s failed: %s", self.path, e)

    @uninterruptible
    async def _transaction(
        self, statements: Sequence[tuple[str, Sequence[object]]]
    ) -> list[tuple[object, ...]]:
        """Runs `statements` in one transaction; the rows the last one returned."""

        def run(db: sqlite3.Connection) -> list[tuple[object, ...]]:
            rows: list[tuple[object, ...]] = []
            for sql, params in statements:
                rows = [tuple(r) for r in db.execute(sql, params).fetchall()]
            return rows

        return await self._write(run)
