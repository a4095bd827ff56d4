"""Sessions' queues of turns, the same SQL on SQLite and PostgreSQL (placeholders aside)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from kodad.domain.model import QueuedTurn
from kodad.store import codec

# A queue's order: position, then time and id (two replicas may queue at the same position).
ORDER = "ORDER BY position, create_time, turn_id"


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's $1, $2..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


class QueueSql:
    """The statements of the queue operations for one database's placeholder style."""

    def __init__(self, numbered: bool) -> None:
        self._q: Callable[[str], str] = _numbered if numbered else (lambda s: s)

    def insert(self, turn: QueuedTurn, session_id: str, *, front: bool) -> tuple[str, list[object]]:
        edge = "MIN(position) - 1" if front else "MAX(position) + 1"
        sql = (
            "INSERT INTO queued_turns (turn_id, session_id, position, body, create_time)"
            f" SELECT ?, ?, COALESCE({edge}, 1), ?, ? FROM queued_turns WHERE session_id = ?"
        )
        params: list[object] = [turn.turn_id, session_id, encode_queued(turn),
                                turn.create_time, session_id]  # fmt: skip
        return self._q(sql), params

    def position(self, turn_id: str, session_id: str) -> tuple[str, list[object]]:
        sql = (
            "SELECT COUNT(*) FROM queued_turns q, queued_turns me WHERE me.turn_id = ?"
            " AND q.session_id = ? AND (q.position, q.create_time, q.turn_id)"
            " <= (me.position, me.create_time, me.turn_id)"
        )
        return self._q(sql), [turn_id, session_id]

    def of_session(self, session_id: str) -> tuple[str, list[object]]:
        sql = f"SELECT turn_id, body, create_time FROM queued_turns WHERE session_id = ? {ORDER}"
        return self._q(sql), [session_id]

    def take(self, session_id: str) -> tuple[str, list[object]]:
        sql = (
            "DELETE FROM queued_turns WHERE turn_id = (SELECT turn_id FROM queued_turns"
            f" WHERE session_id = ? {ORDER} LIMIT 1) RETURNING turn_id, body, create_time"
        )
        return self._q(sql), [session_id]

    def remove(self, session_id: str, turn_id: str) -> tuple[str, list[object]]:
        sql = "DELETE FROM queued_turns WHERE session_id = ? AND turn_id = ? RETURNING turn_id"
        return self._q(sql), [session_id, turn_id]

    def clear(self, session_id: str) -> tuple[str, list[object]]:
        sql = "DELETE FROM queued_turns WHERE session_id = ? RETURNING turn_id"
        return self._q(sql), [session_id]

    def sessions(self) -> tuple[str, list[object]]:
        return "SELECT DISTINCT session_id FROM queued_turns", []


def decode(rows: Sequence[Sequence[object]]) -> list[QueuedTurn]:
    return [decode_queued(str(t), str(body), int(str(time))) for t, body, time in rows]


def encode_queued(turn: QueuedTurn) -> str:
    """A queued turn's input and caller's roots (its id and time are columns)."""
    body: dict[str, Any] = {
        "text": turn.text,
        "images": codec.encode_images(turn.images),
        "roots": list(turn.workspace_roots),
    }
    if turn.output_schema:
        body["schema"] = turn.output_schema
    return codec.dumps(body)


def decode_queued(turn_id: str, body: str, create_time: int) -> QueuedTurn:
    data = json.loads(body)
    return QueuedTurn(
        turn_id,
        data["text"],
        codec.decode_images(data.get("images", [])),
        create_time,
        tuple(data.get("roots", ())),
        data.get("schema", ""),
    )
