"""The default store: one SQLite file through aiosqlite, in WAL mode.

Writes go through one connection under a lock, so each method is one transaction; reads use
a second connection and see only committed data.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Mapping, Sequence

from kodad.domain.events import Event, TurnEnded
from kodad.domain.model import (
    ApprovalRule,
    FileChange,
    FileChangeKind,
    Message,
    SessionRecord,
    Todo,
    Usage,
    now_us,
)
from kodad.store import codec
from kodad.store.base import TurnRecord, uninterruptible
from kodad.store.sqlite_file import (
    BEGIN_TURN,
    INSERT_EVENTS,
    INSERT_TURN,
    MARK_RUNNING,
    PLACEHOLDERS,
    SELECT_SESSION,
    SET_LAST_SEQS,
    SET_TITLE,
    SETTINGS,
    with_rows,
)
from kodad.store.sqlite_queue import SqliteQueues

log = logging.getLogger(__name__)


def _append(db: sqlite3.Connection, session_id: str, message: Message, created: int) -> int:
    """In a transaction: appends `message` to the session's history; its index."""
    row = db.execute(
        "UPDATE sessions SET message_count = message_count + 1, update_time = ?"
        " WHERE id = ? RETURNING message_count",
        (created, session_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"session {session_id} does not exist")
    index = int(row[0])
    db.execute(
        "INSERT INTO messages (session_id, idx, turn_id, role, body, create_time)"
        " VALUES (?,?,?,?,?,?)",
        (
            session_id,
            index,
            message.turn_id,
            message.role.value,
            codec.encode_message_body(message),
            created,
        ),
    )
    return index


class SqliteStore(SqliteQueues):
    """Store on a SQLite file (created with its directory if missing). Writes are
    uninterruptible: see _finish_then_cancel."""

    # Sessions

    def _insert_session(self, r: SessionRecord) -> list[tuple[str, Sequence[object]]]:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({PLACEHOLDERS})",
                codec.session_row(r),
            )
        ]
        statements += self._label_rows(r)
        return statements

    @staticmethod
    def _label_rows(r: SessionRecord) -> list[tuple[str, Sequence[object]]]:
        return [
            ("INSERT INTO session_labels (session_id, key, value) VALUES (?,?,?)", (r.id, k, v))
            for k, v in sorted(r.labels.items())
        ]

    async def create_session(self, record: SessionRecord) -> None:
        await self._transaction(self._insert_session(record))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        rows = await self._lookup(
            f"SELECT {SELECT_SESSION} FROM sessions s WHERE s.id = ?", (session_id,)
        )
        return codec.session_from_row(next(iter(rows))) if rows else None

    async def list_sessions(
        self,
        *,
        limit: int,
        before_id: str | None,
        labels: Mapping[str, str],
        tenant: str | None = None,
    ) -> list[SessionRecord]:
        where: list[str] = []
        params: list[object] = []
        if tenant is not None:
            where.append("s.tenant = ?")
            params.append(tenant)
        if before_id is not None:
            where.append("s.id < ?")
            params.append(before_id)
        for key, value in sorted(labels.items()):
            where.append(
                "EXISTS (SELECT 1 FROM session_labels l"
                " WHERE l.session_id = s.id AND l.key = ? AND l.value = ?)"
            )
            params += [key, value]
        sql = f"SELECT {SELECT_SESSION} FROM sessions s"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.id DESC LIMIT ?"
        params.append(limit)
        rows = await self._r.execute_fetchall(sql, params)
        return [codec.session_from_row(row) for row in rows]

    async def update_session(self, record: SessionRecord) -> None:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"UPDATE sessions SET {SETTINGS} WHERE id=?",
                (*codec.settings_row(record), record.id),
            ),
            ("DELETE FROM session_labels WHERE session_id = ?", (record.id,)),
        ]
        statements += self._label_rows(record)
        await self._transaction(statements)

    async def count_sessions(self, tenant: str) -> int:
        rows = await self._r.execute_fetchall(
            "SELECT count(*) FROM sessions WHERE tenant = ?", (tenant,)
        )
        return int(next(iter(rows))[0])

    @uninterruptible
    async def set_todos(self, session_id: str, todos: tuple[Todo, ...]) -> None:
        await self._transaction(
            [
                (
                    "UPDATE sessions SET todos = ? WHERE id = ?",
                    (codec.encode_todos(todos), session_id),
                )
            ]
        )

    @uninterruptible
    async def delete_session(self, session_id: str) -> bool:
        sql = "DELETE FROM sessions WHERE id = ?"
        return await self._write(lambda db: db.execute(sql, (session_id,)).rowcount > 0)

    async def fork_session(self, source_id: str, record: SessionRecord) -> None:
        statements = self._insert_session(record)
        statements.append(
            (
                "INSERT INTO messages (session_id, idx, turn_id, role, body, create_time)"
                " SELECT ?, idx, turn_id, role, body, create_time FROM messages"
                " WHERE session_id = ?",
                (record.id, source_id),
            )
        )
        await self._transaction(statements)

    # History

    @uninterruptible
    async def append_message(self, session_id: str, message: Message) -> Message:
        created = now_us()
        index = await self._write(lambda db: _append(db, session_id, message, created))
        return dataclasses.replace(message, index=index, create_time=created)

    async def list_messages(
        self, session_id: str, *, after_index: int = 0, limit: int | None = None
    ) -> list[Message]:
        rows = await self._r.execute_fetchall(
            "SELECT idx, turn_id, role, body, create_time FROM messages"
            " WHERE session_id = ? AND idx > ? ORDER BY idx LIMIT ?",
            (session_id, after_index, -1 if limit is None else limit),
        )
        return [codec.message_from_row(row) for row in rows]

    # Events

    @uninterruptible
    async def append_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        last: dict[str, int] = {}
        for e in events:
            last[e.session_id] = e.seq
        rows = [codec.event_row(e) for e in events]  # encoded here, not on the store's thread

        def run(db: sqlite3.Connection) -> None:
            with_rows(db, INSERT_EVENTS, 7, rows)
            with_rows(db, SET_LAST_SEQS, 2, list(last.items()))
            # A turn_started is stored with its turn row, a turn_ended with the turn's end: a
            # crash between the two never leaves them disagreeing.
            for bound in codec.turn_bounds(events):
                if isinstance(bound.payload, TurnEnded):
                    self._end(db, codec.turn_end(bound))
                    continue
                db.execute(INSERT_TURN, codec.turn_row(bound))
                db.execute(MARK_RUNNING, (bound.turn_id, bound.session_id))

        await self._write(run)

    async def list_events(self, session_id: str, *, after_seq: int, limit: int) -> list[Event]:
        rows = await self._r.execute_fetchall(
            f"SELECT {codec.EVENT_COLUMNS} FROM events"
            " WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (session_id, after_seq, limit),
        )
        return [codec.event_from_row(session_id, row) for row in rows]

    # Turns

    @uninterruptible
    async def begin_turn(
        self, turn: TurnRecord, first: Message | None = None, *, title: str = ""
    ) -> Message | None:
        created = now_us()
        usage = codec.encode_usage(Usage())

        def run(db: sqlite3.Connection) -> int:
            db.execute(BEGIN_TURN, (turn.session_id, turn.turn_id, turn.start_time, usage))
            db.execute(
                "UPDATE sessions SET active_turn_id = ?, update_time = ? WHERE id = ?",
                (turn.turn_id, turn.start_time, turn.session_id),
            )
            if title:
                db.execute(SET_TITLE, (title, turn.session_id))
            return 0 if first is None else _append(db, turn.session_id, first, created)

        index = await self._write(run)
        return (
            None if first is None else dataclasses.replace(first, index=index, create_time=created)
        )

    @uninterruptible
    async def end_turn(self, turn: TurnRecord) -> None:
        if turn.reason is None:
            raise ValueError("end_turn needs a reason")
        await self._write(lambda db: self._end(db, turn))

    @staticmethod
    def _end(db: sqlite3.Connection, turn: TurnRecord) -> None:
        """In a transaction: ends the turn (once: a turn already ended stays as it is), adds
        its usage to the session's and frees the session if it still runs that turn."""
        cursor = db.execute(
            "UPDATE turns SET end_time=?, reason=?, error_code=?, error_message=?, usage=?"
            " WHERE session_id=? AND turn_id=? AND reason IS NULL",
            codec.end_row(turn),
        )
        if cursor.rowcount == 0:
            return
        row = db.execute("SELECT usage FROM sessions WHERE id = ?", (turn.session_id,)).fetchone()
        if row is not None:
            total = codec.decode_usage(str(row[0])) + turn.usage
            db.execute(
                "UPDATE sessions SET usage=?, update_time=?,"
                " active_turn_id = CASE WHEN active_turn_id = ? THEN '' ELSE active_turn_id END"
                " WHERE id=?",
                (codec.encode_usage(total), turn.end_time, turn.turn_id, turn.session_id),
            )

    async def unfinished_turns(self) -> list[TurnRecord]:
        async with self._r.execute(
            "SELECT t.session_id, t.turn_id, t.start_time FROM turns t"
            " JOIN sessions s ON s.id = t.session_id AND s.active_turn_id = t.turn_id"
            " WHERE t.reason IS NULL"
        ) as cursor:
            rows = await cursor.fetchall()
        return [TurnRecord(str(s), str(t), int(start)) for s, t, start in rows]

    @uninterruptible
    async def add_approval_rule(self, session_id: str, rule: ApprovalRule) -> None:
        def run(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT approval_rules FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is not None:
                rules = codec.decode_rules(str(row[0]))
                if rule not in rules:
                    db.execute(
                        "UPDATE sessions SET approval_rules = ? WHERE id = ?",
                        (codec.encode_rules((*rules, rule)), session_id),
                    )

        await self._write(run)

    async def list_file_changes(
        self, session_id: str, *, turn_id: str, after: int, limit: int
    ) -> list[tuple[int, FileChange]]:
        sql = (
            "SELECT rowid, turn_id, path, change, create_time FROM file_changes"
            " WHERE session_id = ? AND rowid > ?"
        )
        params: list[object] = [session_id, after]
        if turn_id:
            sql += " AND turn_id = ?"
            params.append(turn_id)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        rows = await self._r.execute_fetchall(sql, params)
        return [
            (int(rowid), FileChange(str(path), FileChangeKind(change), str(turn), int(ctime)))
            for rowid, turn, path, change, ctime in rows
        ]

    async def owns_file(self, session_id: str, path: str) -> bool:
        rows = await self._lookup(
            "SELECT change FROM file_changes WHERE session_id = ? AND path = ?"
            " AND change != ? ORDER BY rowid DESC LIMIT 1",
            (session_id, path, FileChangeKind.MODIFIED.value),
        )
        return bool(rows) and next(iter(rows))[0] == FileChangeKind.CREATED.value

    async def record_file_change(
        self, session_id: str, turn_id: str, path: str, change: FileChangeKind, time: int
    ) -> None:
        await self._transaction(
            [
                (
                    "INSERT INTO file_changes (session_id, turn_id, path, change, create_time)"
                    " VALUES (?,?,?,?,?)",
                    (session_id, turn_id, path, change.value, time),
                )
            ]
        )
