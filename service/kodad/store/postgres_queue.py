"""The PostgreSQL database's queues of turns, and the history's truncation (rewinds)."""

from __future__ import annotations

from kodad.domain.model import QueuedTurn
from kodad.store import queues
from kodad.store.base import uninterruptible
from kodad.store.postgres_db import PostgresDatabase

_SQL = queues.QueueSql(numbered=True)


class PostgresQueues(PostgresDatabase):
    @uninterruptible
    async def enqueue_turn(self, session_id: str, turn: QueuedTurn, *, front: bool) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            sql, params = _SQL.insert(turn, session_id, front=front)
            await conn.execute(sql, *params)
            sql, params = _SQL.position(turn.turn_id, session_id)
            return int(await conn.fetchval(sql, *params))

    async def queued_turns(self, session_id: str) -> list[QueuedTurn]:
        sql, params = _SQL.of_session(session_id)
        return queues.decode([tuple(r) for r in await self.pool.fetch(sql, *params)])

    @uninterruptible
    async def take_queued_turn(self, session_id: str) -> QueuedTurn | None:
        sql, params = _SQL.take(session_id)
        rows = [tuple(r) for r in await self.pool.fetch(sql, *params)]
        return queues.decode(rows)[0] if rows else None

    @uninterruptible
    async def remove_queued_turn(self, session_id: str, turn_id: str) -> bool:
        sql, params = _SQL.remove(session_id, turn_id)
        return bool(await self.pool.fetch(sql, *params))

    @uninterruptible
    async def clear_queue(self, session_id: str) -> list[str]:
        sql, params = _SQL.clear(session_id)
        return [str(r[0]) for r in await self.pool.fetch(sql, *params)]

    @uninterruptible
    async def truncate_messages(self, session_id: str, keep: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM messages WHERE session_id = $1 AND idx > $2", session_id, keep
            )
            await conn.execute(
                "UPDATE sessions SET message_count = $1 WHERE id = $2 AND message_count > $1",
                keep,
                session_id,
            )

    async def queued_sessions(self) -> list[str]:
        sql, params = _SQL.sessions()
        return [str(r[0]) for r in await self.pool.fetch(sql, *params)]
