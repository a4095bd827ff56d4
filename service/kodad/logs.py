"""Logging setup: human-readable lines or one JSON object per line, with the session and
turn a record belongs to (from the turn's task context)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

# (session_id, turn_id) of the code running now; a turn's task sets it.
CONTEXT: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "kodad_log_context", default=("", "")
)


def bind(session_id: str, turn_id: str = "") -> None:
    """Tags the records of the current task (and tasks it starts) with a session and turn."""
    CONTEXT.set((session_id, turn_id))


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session_id, record.turn_id = CONTEXT.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("session_id", "turn_id"):
            value = getattr(record, key, "")
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        session_id, turn_id = getattr(record, "session_id", ""), getattr(record, "turn_id", "")
        if session_id:
            line += f" [session={session_id}" + (f" turn={turn_id}]" if turn_id else "]")
        return line


def configure(level: str, fmt: str, file: Path | None = None) -> None:
    """Logs to stderr (or `file`) at `level` as "text" or "json"."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if file is None else logging.FileHandler(file)
    )
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
