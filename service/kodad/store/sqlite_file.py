"""The SQLite file: its connections (the writer and the reader, each on a thread of its own,
and the loop's own for point reads), its schema migrations, transactions, and the statements
the store shares."""

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


# Rows one statement inserts at most (each size up to it is a cached statement of its own).
ROWS_PER_STATEMENT = 64


def with_rows(
    db: sqlite3.Connection, sql: str, width: int, rows: Sequence[Sequence[object]]
) -> None:
    """Runs `sql`, whose "VALUES" is filled with `rows` of `width` values, many rows per
    statement. The writer's thread hands the GIL over and back around every statement it
    steps, and on a busy loop each hand-over waits for the switch interval (5 ms): one row a
    statement made a batch of a thousand events take seconds."""
    done = 0
    while done < len(rows):
        size = min(ROWS_PER_STATEMENT, 1 << ((len(rows) - done).bit_length() - 1))
        values = ",".join(["(" + ",".join("?" * width) + ")"] * size)
        chunk = rows[done : done + size]
        db.execute(sql.replace("VALUES", "VALUES " + values, 1), [v for r in chunk for v in r])
        done += size


# Events, and the sessions' last seqs (from rows of id and seq), for with_rows.
INSERT_EVENTS = (
    "INSERT INTO events (session_id, seq, turn_id, create_time, payload, subagent_session_id,"
    " parent_call_id) VALUES"
)
SET_LAST_SEQS = (
    "UPDATE sessions SET last_seq = v.column2 FROM (VALUES) AS v WHERE sessions.id = v.column1"
)


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
    """A SQLite database file in WAL mode, migrated to this kodad's schema when opened."""

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

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        try:
            await self._migrate(self._writer)
        except BaseException:
            await self.close()
            raise
        self._reader = await self._connect()
        # busy_timeout 0: a busy database makes a point read go to the reader's thread, which
        # waits there, instead of holding up the loop.
        self._inline = sqlite3.connect(self.path, isolation_level=None)
        self._inline.execute("PRAGMA foreign_keys=ON")
        self._inline.execute("PRAGMA busy_timeout=0")

    async def close(self) -> None:
        if self._committer is not None:  # what was written before the close is committed
            await asyncio.shield(self._committer)
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
            if e.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        return list(await self._r.execute_fetchall(sql, params))

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `work` atomically in a transaction of the writer, on its thread, and returns
        once that transaction is committed.

        Writes group-commit: the works that queue while a transaction runs go together in
        the next one, each in its own savepoint (a work that raises undoes only itself), and
        the batch is one thread round trip and one commit. A thousand turns starting at once
        are a few transactions, not thousands, each waiting behind the others. A work whose
        caller was cancelled before its batch began does not run."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queued.append((work, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="sqlite-writer")
        return cast(T, await future)

    async def _commit_queued(self) -> None:
        while self._queued:
            batch = [(w, f) for w, f in self._queued if not f.done()]
            self._queued = []
            if not batch:
                continue
            conn = self._w
            works = [w for w, _ in batch]
            try:
                outcomes = await conn._execute(_run_batch, conn._conn, works)  # type: ignore[no-untyped-call]
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
