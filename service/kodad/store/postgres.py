"""The PostgreSQL store (asyncpg), shared by several kodad replicas: every write of a turn
checks, in its transaction, the fencing token of the lease its replica holds (see
postgres_cluster.py), so a replica that lost the lease cannot write."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import asyncpg

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
from kodad.store.base import StaleLease, TurnRecord, uninterruptible
from kodad.store.postgres_cluster import EVENTS_CHANNEL, PostgresCluster, events_notices
from kodad.store.postgres_db import (
    BEGIN_TURN,
    INSERT_EVENTS,
    INSERT_TURN,
    MARK_RUNNING,
    NOTIFY_ALL,
    PLACEHOLDERS,
    SELECT_SESSION,
    SET_LAST_SEQS,
    SET_TITLE,
    SETTINGS,
    append_row,
    end_row,
    end_session,
)
from kodad.store.postgres_queue import PostgresQueues

log = logging.getLogger(__name__)


class PostgresStore(PostgresQueues):
    """Store on a PostgreSQL database (`dsn`: postgres://user@host:port/db); `cluster` is
    the replicas' Cluster on the same database."""

    def __init__(
        self, dsn: str, *, replica_id: str = "", lease_ttl_s: float = 15.0, pool_size: int = 10
    ) -> None:
        super().__init__(dsn, pool_size)
        # How the replicas sharing the database coordinate; its leases fence this store's
        # writes.
        self.cluster = PostgresCluster(
            dsn, lambda: self.pool, replica_id=replica_id, lease_ttl_s=lease_ttl_s
        )

    # Life cycle

    async def open(self) -> None:
        await super().open()
        await self.cluster.start()

    async def close(self) -> None:
        await self.cluster.stop()
        await super().close()

    def _insert_session(self, r: SessionRecord) -> list[tuple[str, Sequence[object]]]:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({PLACEHOLDERS})",
                codec.session_row(r),
            )
        ]
        statements += [
            (
                "INSERT INTO session_labels (session_id, key, value) VALUES ($1, $2, $3)",
                (r.id, k, v),
            )
            for k, v in sorted(r.labels.items())
        ]
        return statements

    async def create_session(self, record: SessionRecord) -> None:
        await self._transaction(self._insert_session(record))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {SELECT_SESSION} FROM sessions s WHERE s.id = $1", session_id
        )
        return codec.session_from_row(tuple(row)) if row is not None else None

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

        def param(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        if tenant is not None:
            where.append(f"s.tenant = {param(tenant)}")
        if before_id is not None:
            where.append(f"s.id < {param(before_id)}")
        for key, value in sorted(labels.items()):
            where.append(
                "EXISTS (SELECT 1 FROM session_labels l WHERE l.session_id = s.id"
                f" AND l.key = {param(key)} AND l.value = {param(value)})"
            )
        sql = f"SELECT {SELECT_SESSION} FROM sessions s"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY s.id DESC LIMIT {param(limit)}"
        rows = await self.pool.fetch(sql, *params)
        return [codec.session_from_row(tuple(row)) for row in rows]

    async def update_session(self, record: SessionRecord) -> None:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"UPDATE sessions SET {SETTINGS} WHERE id=${len(codec.SESSION_SETTINGS) + 1}",
                (*codec.settings_row(record), record.id),
            ),
            ("DELETE FROM session_labels WHERE session_id = $1", (record.id,)),
        ]
        statements += [
            (
                "INSERT INTO session_labels (session_id, key, value) VALUES ($1, $2, $3)",
                (record.id, k, v),
            )
            for k, v in sorted(record.labels.items())
        ]
        await self._transaction(statements)

    async def count_sessions(self, tenant: str) -> int:
        return int(
            await self.pool.fetchval("SELECT count(*) FROM sessions WHERE tenant = $1", tenant)
        )

    @uninterruptible
    async def set_todos(self, session_id: str, todos: tuple[Todo, ...]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, session_id)
            await conn.execute(
                "UPDATE sessions SET todos = $1 WHERE id = $2",
                codec.encode_todos(todos),
                session_id,
            )

    @uninterruptible
    async def delete_session(self, session_id: str) -> bool:
        status = await self.pool.execute("DELETE FROM sessions WHERE id = $1", session_id)
        return bool(status.endswith(" 1"))

    async def fork_session(self, source_id: str, record: SessionRecord) -> None:
        statements = self._insert_session(record)
        statements.append(
            (
                "INSERT INTO messages (session_id, idx, turn_id, role, body, create_time)"
                " SELECT $1, idx, turn_id, role, body, create_time FROM messages"
                " WHERE session_id = $2",
                (record.id, source_id),
            )
        )
        await self._transaction(statements)

    # History

    @uninterruptible
    async def append_message(self, session_id: str, message: Message) -> Message:
        created = now_us()
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, session_id)
            index = await append_row(conn, session_id, message, created)
        return dataclasses.replace(message, index=index, create_time=created)

    async def list_messages(
        self, session_id: str, *, after_index: int = 0, limit: int | None = None
    ) -> list[Message]:
        rows = await self.pool.fetch(
            "SELECT idx, turn_id, role, body, create_time FROM messages"
            " WHERE session_id = $1 AND idx > $2 ORDER BY idx LIMIT $3",
            session_id,
            after_index,
            limit,
        )
        return [codec.message_from_row(tuple(row)) for row in rows]

    # Events

    @uninterruptible
    async def append_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for e in events:
            first.setdefault(e.session_id, e.seq)
            last[e.session_id] = e.seq
        try:
            await self._append_events(events, last)
        except asyncpg.UniqueViolationError:
            # Someone else stored these seqs: this replica is not the session's owner any more.
            for session_id, seq in first.items():
                stored = await self.pool.fetchval(
                    "SELECT last_seq FROM sessions WHERE id = $1", session_id
                )
                if stored is not None and stored >= seq:
                    raise StaleLease(session_id) from None
            raise

    async def _append_events(self, events: Sequence[Event], last: dict[str, int]) -> None:
        """One transaction of a few statements whatever the batch holds: each statement is
        a round trip made while the sessions' rows are locked, so none is per session or per
        event (a batch under load holds hundreds of sessions)."""
        sessions = sorted(last)
        async with self.pool.acquire() as conn, conn.transaction():
            # Rows are locked in session order everywhere (fence, renewal): no deadlocks.
            await self.cluster.fence_all(conn, sessions)
            columns = list(zip(*(codec.event_row(e) for e in events), strict=True))
            await conn.execute(INSERT_EVENTS, *columns)
            # A turn_started is stored with its turn row, a turn_ended with the turn's end:
            # a crash between the two never leaves them disagreeing. Turn rows before
            # sessions rows, as begin_turn and end_turn lock them: no deadlock.
            bounds = codec.turn_bounds(events)
            ended = set()
            for bound in bounds:
                if not isinstance(bound.payload, TurnEnded):
                    await conn.execute(INSERT_TURN, *codec.turn_row(bound))
                elif await end_row(conn, codec.turn_end(bound)):
                    ended.add(bound.seq)
            await conn.execute(SET_LAST_SEQS, sessions, [last[sid] for sid in sessions])
            for bound in bounds:
                if not isinstance(bound.payload, TurnEnded):
                    await conn.execute(MARK_RUNNING, bound.turn_id, bound.session_id)
                elif bound.seq in ended:
                    await end_session(conn, codec.turn_end(bound))
            # Delivered on commit.
            await conn.execute(NOTIFY_ALL, EVENTS_CHANNEL, events_notices(last))

    async def list_events(self, session_id: str, *, after_seq: int, limit: int) -> list[Event]:
        rows = await self.pool.fetch(
            f"SELECT {codec.EVENT_COLUMNS} FROM events"
            " WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            session_id,
            after_seq,
            limit,
        )
        return [codec.event_from_row(session_id, tuple(row)) for row in rows]

    # Turns

    @uninterruptible
    async def begin_turn(
        self, turn: TurnRecord, first: Message | None = None, *, title: str = ""
    ) -> Message | None:
        created = now_us()
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, turn.session_id)
            await conn.execute(
                BEGIN_TURN, turn.session_id, turn.turn_id, turn.start_time,
                codec.encode_usage(Usage()),
            )  # fmt: skip
            await conn.execute(
                "UPDATE sessions SET active_turn_id = $1, update_time = $2 WHERE id = $3",
                turn.turn_id,
                turn.start_time,
                turn.session_id,
            )
            if title:
                await conn.execute(SET_TITLE, title, turn.session_id)
            if first is None:
                return None
            index = await append_row(conn, turn.session_id, first, created)
        return dataclasses.replace(first, index=index, create_time=created)

    @uninterruptible
    async def end_turn(self, turn: TurnRecord) -> None:
        if turn.reason is None:
            raise ValueError("end_turn needs a reason")
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, turn.session_id)
            if await end_row(conn, turn):
                await end_session(conn, turn)

    async def unfinished_turns(self) -> list[TurnRecord]:
        """Running turns whose owner is gone: no lease, or one that expired."""
        rows = await self.pool.fetch(
            "SELECT t.session_id, t.turn_id, t.start_time FROM turns t"
            " JOIN sessions s ON s.id = t.session_id AND s.active_turn_id = t.turn_id"
            " LEFT JOIN leases l ON l.session_id = t.session_id"
            " WHERE t.reason IS NULL AND (l.session_id IS NULL OR l.expires_at < now())"
        )
        return [TurnRecord(r["session_id"], r["turn_id"], int(r["start_time"])) for r in rows]

    @uninterruptible
    async def add_approval_rule(self, session_id: str, rule: ApprovalRule) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, session_id)
            value = await conn.fetchval(
                "SELECT approval_rules FROM sessions WHERE id = $1 FOR NO KEY UPDATE", session_id
            )
            if value is not None:
                rules = codec.decode_rules(value)
                if rule not in rules:
                    await conn.execute(
                        "UPDATE sessions SET approval_rules = $1 WHERE id = $2",
                        codec.encode_rules((*rules, rule)),
                        session_id,
                    )

    async def list_file_changes(
        self, session_id: str, *, turn_id: str, after: int, limit: int
    ) -> list[tuple[int, FileChange]]:
        sql = (
            "SELECT id, turn_id, path, change, create_time FROM file_changes"
            " WHERE session_id = $1 AND id > $2"
        )
        params: list[object] = [session_id, after]
        if turn_id:
            sql += " AND turn_id = $3"
            params.append(turn_id)
        sql += f" ORDER BY id LIMIT ${len(params) + 1}"
        params.append(limit)
        rows = await self.pool.fetch(sql, *params)
        return [
            (
                int(r["id"]),
                FileChange(
                    r["path"], FileChangeKind(r["change"]), r["turn_id"], int(r["create_time"])
                ),
            )
            for r in rows
        ]

    async def owns_file(self, session_id: str, path: str) -> bool:
        change = await self.pool.fetchval(
            "SELECT change FROM file_changes WHERE session_id = $1 AND path = $2"
            " AND change != $3 ORDER BY id DESC LIMIT 1",
            session_id,
            path,
            FileChangeKind.MODIFIED.value,
        )
        return bool(change == FileChangeKind.CREATED.value)

    @uninterruptible
    async def record_file_change(
        self, session_id: str, turn_id: str, path: str, change: FileChangeKind, time: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.cluster.fence(conn, session_id)
            await conn.execute(
                "INSERT INTO file_changes (session_id, turn_id, path, change, create_time)"
                " VALUES ($1, $2, $3, $4, $5)",
                session_id,
                turn_id,
                path,
                change.value,
                time,
            )
