"""The SQLite file's queues of turns, and the history's truncation (rewinds)."""

from __future__ import annotations

from kodad.domain.model import QueuedTurn
from kodad.store import queues
from kodad.store.base import uninterruptible
from kodad.store.sqlite_file import SqliteFile

_SQL = queues.QueueSql(numbered=False)


class SqliteQueues(SqliteFile):
    async def enqueue_turn(self, session_id: str, turn: QueuedTurn, *, front: bool) -> int:
        await self._transaction([_SQL.insert(turn, session_id, front=front)])
        rows = await self._lookup(*_SQL.position(turn.turn_id, session_id))
        return int(next(iter(rows))[0])

    async def queued_turns(self, session_id: str) -> list[QueuedTurn]:
        return queues.decode(await self._lookup(*_SQL.of_session(session_id)))

    async def take_queued_turn(self, session_id: str) -> QueuedTurn | None:
        rows = await self._transaction([_SQL.take(session_id)])
        return queues.decode(rows)[0] if rows else None

    async def remove_queued_turn(self, session_id: str, turn_id: str) -> bool:
        return bool(await self._transaction([_SQL.remove(session_id, turn_id)]))

    async def clear_queue(self, session_id: str) -> list[str]:
        return [str(row[0]) for row in await self._transaction([_SQL.clear(session_id)])]

    async def queued_sessions(self) -> list[str]:
        return [str(row[0]) for row in await self._r.execute_fetchall(*_SQL.sessions())]

    @uninterruptible
    async def truncate_messages(self, session_id: str, keep: int) -> None:
        await self._transaction(
            [
                ("DELETE FROM messages WHERE session_id = ? AND idx > ?", (session_id, keep)),
                (
                    "UPDATE sessions SET message_count = ? WHERE id = ? AND message_count > ?",
                    (keep, session_id, keep),
                ),
            ]
        )
