"""The PostgreSQL store (asyncpg), shared by several kodad replicas.

Besides the Store protocol it is the replicas' Cluster: a running turn is owned by one replica
through a lease row (owner, expiry, fencing token) renewed while it runs; every write of a
turn checks the token in its transaction, so a replica that lost the lease cannot write.
Committed events are announced with NOTIFY (other replicas' watchers follow them), and
commands for a turn another replica owns travel through the `commands` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any, Union

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kodad.domain.events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    LoopCapReached,
    ToolCallFinished,
    UserQuestion,
)
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
from kodad.store.base import (
    LeaseHeld,
    ReplicaHandler,
    StaleLease,
    TurnRecord,
    uninterruptible,
)

log = logging.getLogger(__name__)

Connection = Union["asyncpg.Connection[Any]", "PoolConnectionProxy[Any]"]

# Each entry migrates the schema from version i to i + 1. Append only.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        workspace TEXT NOT NULL,
        provider TEXT NOT NULL,
        approval_mode TEXT NOT NULL,
        loop_cap INTEGER NOT NULL,
        system_prompt TEXT NOT NULL,
        usage TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        update_time BIGINT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        message_count BIGINT NOT NULL DEFAULT 0,
        active_turn_id TEXT NOT NULL DEFAULT '',
        approval_timeout_ms BIGINT NOT NULL DEFAULT 0,
        approval_rules TEXT NOT NULL DEFAULT '[]',
        tenant TEXT NOT NULL DEFAULT '',
        todos TEXT NOT NULL DEFAULT '[]',
        profile TEXT NOT NULL DEFAULT 'default',
        parent_session_id TEXT NOT NULL DEFAULT '',
        mcp_servers TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX sessions_by_tenant ON sessions(tenant, id);
    CREATE TABLE session_labels (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    );
    CREATE INDEX session_labels_by_value ON session_labels(key, value, session_id);
    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx BIGINT NOT NULL,
        turn_id TEXT NOT NULL,
        role TEXT NOT NULL,
        body TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        PRIMARY KEY (session_id, idx)
    );
    CREATE TABLE events (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        turn_id TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        payload TEXT NOT NULL,
        subagent_session_id TEXT NOT NULL DEFAULT '',
        parent_call_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE turns (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        start_time BIGINT NOT NULL,
        end_time BIGINT NOT NULL DEFAULT 0,
        reason TEXT,
        error_code TEXT NOT NULL DEFAULT '',
        error_message TEXT NOT NULL DEFAULT '',
        usage TEXT NOT NULL,
        PRIMARY KEY (session_id, turn_id)
    );
    CREATE TABLE file_changes (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        path TEXT NOT NULL,
        change TEXT NOT NULL,
        create_time BIGINT NOT NULL
    );
    CREATE INDEX file_changes_by_session ON file_changes(session_id, turn_id);
    -- Who runs the session's turn. A released lease keeps its row (expired), so tokens only
    -- grow.
    CREATE TABLE leases (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        turn_id TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    -- Commands sent by one replica to the turn another owns; the owner deletes what it takes.
    CREATE TABLE commands (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
    """
    ALTER TABLE sessions ADD COLUMN sandbox TEXT NOT NULL DEFAULT '';
    """,
)

# A turn's row, once: begin_turn and the turn_started event both write it.
_INSERT_TURN = (
    "INSERT INTO turns (session_id, turn_id, start_time, usage) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (session_id, turn_id) DO NOTHING"
)
# begin_turn's, whose start time is the turn's own.
_BEGIN_TURN = _INSERT_TURN.replace("DO NOTHING", "DO UPDATE SET start_time = excluded.start_time")
# The session runs the turn, unless that turn's end is already stored.
_MARK_RUNNING = (
    "UPDATE sessions SET active_turn_id = $1 WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM"
    " turns WHERE session_id = $2 AND turn_id = $1 AND end_time > 0)"
)

RELISTEN_DELAY_S = 1.0
EVENTS_CHANNEL = "kodad_events"
COMMANDS_CHANNEL = "kodad_commands"
REPLIES_CHANNEL = "kodad_replies"
# Serialises migrations of replicas starting together.
MIGRATION_LOCK = 0x6B6F646164

_LABELS_OBJECT = (
    "(SELECT COALESCE(json_object_agg(l.key, l.value), '{}')::text FROM session_labels l"
    " WHERE l.session_id = s.id)"
)
_SELECT_SESSION = "s." + codec.SESSION_COLUMNS.replace(", ", ", s.") + ", " + _LABELS_OBJECT
_SETTINGS = ", ".join(f"{c}=${i + 1}" for i, c in enumerate(codec.SESSION_SETTINGS))
_PLACEHOLDERS = ", ".join(f"${i + 1}" for i in range(codec.SESSION_COLUMNS.count(",") + 1))


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PostgresStore:
    """Store and Cluster on a PostgreSQL database (`dsn`: postgres://user@host:port/db)."""

    def __init__(
        self, dsn: str, *, replica_id: str = "", lease_ttl_s: float = 15.0, pool_size: int = 10
    ) -> None:
        self.dsn = dsn
        self.replica_id = replica_id or default_replica_id()
        self.lease_ttl_s = lease_ttl_s
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        # Fencing tokens of the leases this replica holds, by session.
        self._tokens: dict[str, int] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self._handler: ReplicaHandler | None = None
        self._relisten: asyncio.Task[None] | None = None

    # Life cycle

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self._pool_size, command_timeout=60
        )
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        self._renewer = asyncio.create_task(self._renew_leases(), name="lease-renewer")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._relisten is not None:
            self._relisten.cancel()
            self._relisten = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS kodad_schema (version INTEGER NOT NULL)")
            version = await conn.fetchval("SELECT max(version) FROM kodad_schema") or 0
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the database has schema version {version}, newer than this kodad "
                    f"({len(MIGRATIONS)}); upgrade kodad"
                )
            for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
                log.info("migrating the database to schema version %d", target)
                await conn.execute(script)
                await conn.execute("INSERT INTO kodad_schema (version) VALUES ($1)", target)

    async def _fence(self, conn: Connection, session_id: str) -> None:
        """Inside a transaction: fails unless this replica still holds the session's lease
        (when it took one). The row lock makes a takeover wait for this transaction."""
        token = self._tokens.get(session_id)
        if token is None:
            return
        current = await conn.fetchval(
            "SELECT token FROM leases WHERE session_id = $1 FOR SHARE", session_id
        )
        if current != token:
            raise StaleLease(session_id)

    # Sessions

    def _insert_session(self, r: SessionRecord) -> list[tuple[str, Sequence[object]]]:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({_PLACEHOLDERS})",
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

    @uninterruptible
    async def _transaction(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for sql, params in statements:
                await conn.execute(sql, *params)

    async def create_session(self, record: SessionRecord) -> None:
        await self._transaction(self._insert_session(record))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_SELECT_SESSION} FROM sessions s WHERE s.id = $1", session_id
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
        sql = f"SELECT {_SELECT_SESSION} FROM sessions s"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY s.id DESC LIMIT {param(limit)}"
        rows = await self.pool.fetch(sql, *params)
        return [codec.session_from_row(tuple(row)) for row in rows]

    async def update_session(self, record: SessionRecord) -> None:
        statements: list[tuple[str, Sequence[object]]] = [
            (
                f"UPDATE sessions SET {_SETTINGS} WHERE id=${len(codec.SESSION_SETTINGS) + 1}",
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
            await self._fence(conn, session_id)
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
            await self._fence(conn, session_id)
            index = await conn.fetchval(
                "UPDATE sessions SET message_count = message_count + 1, update_time = $1"
                " WHERE id = $2 RETURNING message_count",
                created,
                session_id,
            )
            if index is None:
                raise LookupError(f"session {session_id} does not exist")
            await conn.execute(
                "INSERT INTO messages (session_id, idx, turn_id, role, body, create_time)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                session_id,
                index,
                message.turn_id,
                message.role.value,
                codec.encode_message_body(message),
                created,
            )
        return dataclasses.replace(message, index=int(index), create_time=created)

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
        async with self.pool.acquire() as conn, conn.transaction():
            # Rows are locked in session order everywhere (fence, renewal): no deadlocks.
            for session_id in sorted(last):
                await self._fence(conn, session_id)
            await conn.executemany(
                "INSERT INTO events (session_id, seq, turn_id, create_time, payload,"
                " subagent_session_id, parent_call_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [codec.event_row(e) for e in events],
            )
            # A turn_started is stored with its turn row, so a crash right after it still
            # leaves a turn that recovery finds and ends. Turn rows before sessions rows, as
            # begin_turn and end_turn lock them: no deadlock.
            starts = codec.turn_starts(events)
            for started in starts:
                await conn.execute(_INSERT_TURN, *codec.turn_row(started))
            await conn.executemany(
                "UPDATE sessions SET last_seq = $1 WHERE id = $2",
                [(last[sid], sid) for sid in sorted(last)],
            )
            for started in starts:
                await conn.execute(_MARK_RUNNING, started.turn_id, started.session_id)
            for sid, seq in last.items():  # delivered on commit
                await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, f"{sid} {seq}")

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
    async def begin_turn(self, turn: TurnRecord) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._fence(conn, turn.session_id)
            await conn.execute(
                _BEGIN_TURN,
                turn.session_id,
                turn.turn_id,
                turn.start_time,
                codec.encode_usage(Usage()),
            )
            await conn.execute(
                "UPDATE sessions SET active_turn_id = $1, update_time = $2 WHERE id = $3",
                turn.turn_id,
                turn.start_time,
                turn.session_id,
            )

    @uninterruptible
    async def end_turn(self, turn: TurnRecord) -> None:
        if turn.reason is None:
            raise ValueError("end_turn needs a reason")
        async with self.pool.acquire() as conn, conn.transaction():
            await self._fence(conn, turn.session_id)
            await conn.execute(
                "UPDATE turns SET end_time=$1, reason=$2, error_code=$3, error_message=$4,"
                " usage=$5 WHERE session_id=$6 AND turn_id=$7",
                turn.end_time,
                turn.reason.value,
                turn.error_code,
                turn.error_message,
                codec.encode_usage(turn.usage),
                turn.session_id,
                turn.turn_id,
            )
            usage = await conn.fetchval(
                "SELECT usage FROM sessions WHERE id = $1 FOR NO KEY UPDATE", turn.session_id
            )
            if usage is not None:
                total = codec.decode_usage(usage) + turn.usage
                await conn.execute(
                    "UPDATE sessions SET usage=$1, active_turn_id='', update_time=$2 WHERE id=$3",
                    codec.encode_usage(total),
                    turn.end_time,
                    turn.session_id,
                )

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
            await self._fence(conn, session_id)
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
            await self._fence(conn, session_id)
            await conn.execute(
                "INSERT INTO file_changes (session_id, turn_id, path, change, create_time)"
                " VALUES ($1, $2, $3, $4, $5)",
                session_id,
                turn_id,
                path,
                change.value,
                time,
            )

    async def open_requests(self, session_id: str, turn_id: str) -> list[Event]:
        """The events that asked questions of a running turn (its sub-agents' included) that
        are not answered yet, by seq: approvals without approval_resolved, ask_user questions
        whose call has not finished, and a loop question that is the session's last event."""
        columns = "e." + codec.EVENT_COLUMNS.replace(", ", ", e.")
        rows = await self.pool.fetch(
            f"SELECT {columns}, s.last_seq FROM events e JOIN sessions s ON s.id = e.session_id"
            " WHERE e.session_id = $1 AND e.turn_id = $2"
            " AND (e.payload::jsonb ->> 'k') = ANY($3::text[]) ORDER BY e.seq",
            session_id,
            turn_id,
            ["approval_requested", "approval_resolved", "user_question", "tool_call_finished",
             "loop_cap_reached"],
        )  # fmt: skip
        asked: dict[tuple[str, str], Event] = {}
        for r in rows:
            event = codec.event_from_row(session_id, tuple(r)[:-1])
            p, child = event.payload, event.subagent_session_id
            if isinstance(p, ApprovalRequested):
                asked[(child, "r" + p.request_id)] = event
            elif isinstance(p, ApprovalResolved):
                asked.pop((child, "r" + p.request_id), None)
            elif isinstance(p, UserQuestion):
                asked[(child, "c" + p.call_id)] = event
            elif isinstance(p, ToolCallFinished):
                asked.pop((child, "c" + p.call_id), None)
            elif isinstance(p, LoopCapReached) and event.seq == r["last_seq"]:
                asked[(child, "loop")] = event
        return sorted(asked.values(), key=lambda e: e.seq)

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    # Cluster: leases

    @uninterruptible
    async def acquire_lease(self, session_id: str, turn_id: str) -> int:
        """Takes the session's lease for `turn_id`: when it is free, expired or already this
        replica's. Returns its fencing token; raises LeaseHeld naming the replica that holds
        it."""
        async with self.pool.acquire() as conn, conn.transaction():
            token = await conn.fetchval(
                "INSERT INTO leases (session_id, owner, turn_id, token, expires_at)"
                " VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4))"
                " ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner,"
                " turn_id = EXCLUDED.turn_id, token = leases.token + 1,"
                " expires_at = EXCLUDED.expires_at"
                " WHERE leases.expires_at < now() OR leases.owner = EXCLUDED.owner"
                " RETURNING token",
                session_id,
                self.replica_id,
                turn_id,
                self.lease_ttl_s,
            )
            if token is None:
                row = await conn.fetchrow(
                    "SELECT owner, turn_id FROM leases WHERE session_id = $1", session_id
                )
                owner, held_for = (row["owner"], row["turn_id"]) if row else ("?", "?")
                raise LeaseHeld(session_id, owner, held_for)
        self._tokens[session_id] = int(token)
        return int(token)

    @uninterruptible
    async def release_lease(self, session_id: str, token: int) -> None:
        """Gives up the lease taken with `token` (unless a later one of this replica
        replaced it)."""
        if self._tokens.get(session_id) == token:
            del self._tokens[session_id]
            await self.pool.execute(
                "UPDATE leases SET expires_at = '-infinity' WHERE session_id = $1 AND token = $2",
                session_id,
                token,
            )

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            if not self._tokens:
                continue
            held = dict(self._tokens)
            try:
                renewed = await self.pool.fetch(
                    "WITH mine AS (SELECT l.session_id FROM leases l"
                    " JOIN unnest($1::text[], $2::bigint[]) AS t(sid, token)"
                    " ON l.session_id = t.sid AND l.token = t.token"
                    " ORDER BY l.session_id FOR UPDATE OF l)"
                    " UPDATE leases l SET expires_at = now() + make_interval(secs => $3)"
                    " FROM mine WHERE l.session_id = mine.session_id RETURNING l.session_id",
                    list(held),
                    list(held.values()),
                    self.lease_ttl_s,
                )
            except Exception:
                log.exception("renewing leases failed; retrying")
                continue
            lost = set(held) - {r["session_id"] for r in renewed}
            for session_id in lost:
                if self._tokens.get(session_id) == held[session_id] and self._handler:
                    log.error("lost the lease of session %s to another replica", session_id)
                    self._handler.lease_lost(session_id)

    # Cluster: notifications and commands

    async def listen(self, handler: ReplicaHandler) -> None:
        """Reports other replicas' event commits, commands for turns running here and lost
        leases to `handler`, on a connection of its own; if that connection breaks it is made
        again (retrying every second) and the handler told to resync."""
        self._handler = handler
        await self._listen()

    async def _listen(self) -> None:
        handler = self._handler
        assert handler is not None
        conn = await asyncpg.connect(self.dsn)
        self._listener = conn

        def events(_c: Connection, _pid: int, _channel: str, payload: object) -> None:
            session_id, seq = str(payload).rsplit(" ", 1)
            handler.remote_events(session_id, int(seq))

        def commands(_c: Connection, _pid: int, _channel: str, payload: object) -> None:
            asyncio.get_running_loop().create_task(handler.remote_commands(str(payload)))

        def lost(_c: Connection) -> None:
            if self._listener is conn and self._relisten is None:
                self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

        def replies(_c: Connection, _pid: int, _channel: str, payload: object) -> None:
            reply = json.loads(str(payload))
            future = self._replies.pop(int(reply["id"]), None)
            if future is not None and not future.done():
                future.set_result((reply["code"], reply["message"]))

        await conn.add_listener(EVENTS_CHANNEL, events)
        await conn.add_listener(COMMANDS_CHANNEL, commands)
        await conn.add_listener(REPLIES_CHANNEL, replies)
        conn.add_termination_listener(lost)

    async def _listen_again(self) -> None:
        log.warning("the database connection for notifications broke; connecting again")
        try:
            while True:
                try:
                    await self._listen()
                    break
                except (OSError, asyncpg.PostgresError) as e:
                    log.warning("cannot listen to the database yet (%s); retrying", e)
                    await asyncio.sleep(RELISTEN_DELAY_S)
        finally:
            self._relisten = None
        assert self._handler is not None
        self._handler.resync()

    async def send_command(
        self, session_id: str, turn_id: str, body: str, timeout_s: float
    ) -> tuple[str, str]:
        """Queues a command for the replica that owns the turn and waits for its answer:
        ("", "") when applied, else (error kind, message)."""
        loop = asyncio.get_running_loop()
        async with self.pool.acquire() as conn, conn.transaction():
            command_id = int(
                await conn.fetchval(
                    "INSERT INTO commands (session_id, turn_id, sender, body)"
                    " VALUES ($1, $2, $3, $4) RETURNING id",
                    session_id,
                    turn_id,
                    self.replica_id,
                    body,
                )
            )
            future: asyncio.Future[tuple[str, str]] = loop.create_future()
            self._replies[command_id] = future
            await conn.execute("SELECT pg_notify($1, $2)", COMMANDS_CHANNEL, session_id)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            await self.pool.execute("DELETE FROM commands WHERE id = $1", command_id)
            return "unavailable", f"the replica running turn {turn_id} did not answer"
        finally:
            self._replies.pop(command_id, None)

    async def take_commands(self, session_id: str) -> list[tuple[int, str, str]]:
        """The commands waiting for the session's turn, removed: (id, turn_id, body)."""
        rows = await self.pool.fetch(
            "DELETE FROM commands WHERE session_id = $1 RETURNING id, turn_id, body", session_id
        )
        return sorted((int(r["id"]), r["turn_id"], r["body"]) for r in rows)

    async def reply_command(self, command_id: int, code: str, message: str) -> None:
        payload = json.dumps({"id": command_id, "code": code, "message": message[:4000]})
        await self.pool.execute("SELECT pg_notify($1, $2)", REPLIES_CHANNEL, payload)
