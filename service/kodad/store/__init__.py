"""Durable state: sessions, history, the event log, turns and file changes."""

from kodad.store.base import Store, TurnRecord
from kodad.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "TurnRecord"]
