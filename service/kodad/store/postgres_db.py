"""The PostgreSQL database: its pool, its schema migrations (serialised between replicas
starting together), transactions, and the statements the store shares."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Union

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kodad.domain.model import Message
from kodad.store import codec
from kodad.store.base import TurnRecord, uninterruptible
from kodad.store.postgres_schema import MIGRATIONS

log = logging.getLogger(__name__)

Connection = Union["asyncpg.Connection[Any]", "PoolConnectionProxy[Any]"]

# A turn's row, once: begin_turn and the turn_started event both write it.
INSERT_TURN = (
    "INSERT INTO turns (session_id, turn_id, start_time, usage) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (session_id, turn_id) DO NOTHING"
)
# begin_turn's, whose start time is the turn's own.
BEGIN_TURN = INSERT_TURN.replace("DO NOTHING", "DO UPDATE SET start_time = excluded.start_time")
# Names a session that has no title yet (begin_turn, after its first prompt).
SET_TITLE = "UPDATE sessions SET title = $1 WHERE id = $2 AND title = ''"
# The session runs the turn, unless that turn's end is already stored.
MARK_RUNNING = (
    "UPDATE sessions SET active_turn_id = $1 WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM"
    " turns WHERE session_id = $2 AND turn_id = $1 AND end_time > 0)"
)

# A batch of events in one statement: a column array each (codec.event_row's order).
INSERT_EVENTS = (
    "INSERT INTO events (session_id, seq, turn_id, create_time, payload,"
    " subagent_session_id, parent_call_id) SELECT * FROM unnest($1::text[], $2::bigint[],"
    " $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])"
)
# Each session's last seq ($1 ids in order, $2 seqs), the rows locked in id order first as
# every transaction locks sessions' rows, and as an UPDATE locks them (not the keys).
SET_LAST_SEQS = (
    "WITH locked AS MATERIALIZED (SELECT id FROM sessions WHERE id = ANY($1::text[])"
    " ORDER BY id FOR NO KEY UPDATE)"
    " UPDATE sessions s SET last_seq = v.seq FROM locked,"
    " unnest($1::text[], $2::bigint[]) AS v(id, seq) WHERE s.id = locked.id AND s.id = v.id"
)
# A notification on channel $1 for each payload of $2.
NOTIFY_ALL = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"

# Serialises migrations of replicas starting together.
MIGRATION_LOCK = 0x6B6F646164

LABELS_OBJECT = (
    "(SELECT COALESCE(json_object_agg(l.key, l.value), '{}')::text FROM session_labels l"
    " WHERE l.session_id = s.id)"
)
SELECT_SESSION = "s." + codec.SESSION_COLUMNS.replace(", ", ", s.") + ", " + LABELS_OBJECT
SETTINGS = ", ".join(f"{c}=${i + 1}" for i, c in enumerate(codec.SESSION_SETTINGS))
PLACEHOLDERS = ", ".join(f"${i + 1}" for i in range(codec.SESSION_COLUMNS.count(",") + 1))


async def _kept(_conn: Connection) -> None:
    """A connection going back to the pool keeps its session as it is: the store leaves no
    state in one but transactions (the pool rolls back one left open) and advisory locks of
    a transaction. The driver's default reset (unlock, close cursors, unlisten, reset
    settings) is one more round trip after every use."""


class PostgresDatabase:
    """A pool on a PostgreSQL database, migrated to this kodad's schema when opened."""

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self._pool_size, command_timeout=60, reset=_kept
        )
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
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

    @uninterruptible
    async def _transaction(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for sql, params in statements:
                await conn.execute(sql, *params)


async def end_row(conn: Connection, turn: TurnRecord) -> bool:
    """In a transaction: ends the turn's row unless it has ended; whether it did."""
    changed = await conn.fetchval(
        "UPDATE turns SET end_time=$1, reason=$2, error_code=$3, error_message=$4,"
        " usage=$5 WHERE session_id=$6 AND turn_id=$7 AND reason IS NULL RETURNING 1",
        *codec.end_row(turn),
    )
    return changed is not None


async def end_session(conn: Connection, turn: TurnRecord) -> None:
    """In a transaction: adds an ended turn's usage to its session's and frees the
    session if it still runs that turn."""
    usage = await conn.fetchval(
        "SELECT usage FROM sessions WHERE id = $1 FOR NO KEY UPDATE", turn.session_id
    )
    if usage is not None:
        total = codec.decode_usage(usage) + turn.usage
        await conn.execute(
            "UPDATE sessions SET usage=$1, update_time=$2, active_turn_id = CASE WHEN"
            " active_turn_id = $3 THEN '' ELSE active_turn_id END WHERE id=$4",
            codec.encode_usage(total),
            turn.end_time,
            turn.turn_id,
            turn.session_id,
        )


async def append_row(conn: Connection, session_id: str, message: Message, created: int) -> int:
    """In a transaction: appends `message` to the session's history; its index."""
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
    return int(index)
