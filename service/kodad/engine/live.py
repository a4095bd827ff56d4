"""The sessions this replica has in memory, and what every part of the engine shares."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from kodad.domain import errors
from kodad.domain.access import Caller, ProviderKeys
from kodad.domain.errors import InvalidArgument
from kodad.domain.model import Message, SessionRecord
from kodad.engine.checkpoints import Snapshots
from kodad.engine.eventlog import EventLog, EventWriter
from kodad.engine.profiles import ProfileCatalog
from kodad.engine.settings import EngineSettings
from kodad.engine.turn import Turn
from kodad.providers import ProviderRegistry
from kodad.store.base import Cluster, Store
from kodad.tools import ToolRegistry
from kodad.tools.mcp import McpHub

# How many sessions keep their history in memory between turns.
HISTORIES = 256


@dataclass
class LiveSession:
    log: EventLog
    tenant: str
    turn: Turn | None = None
    watchers: int = 0
    held: bool = False  # changed outside a turn (a rewind): no turn starts
    # The id of the last turn started here (empty before the first since the start).
    last_turn_id: str = ""
    mcp: McpHub | None = None  # the session's MCP servers, once a turn needed them
    # The session's history as its last turn here left it (turns append to it), so a turn's
    # start does not read and decode it again; None when not kept.
    history: list[Message] | None = None


class LiveSessions:
    """Sessions by id, each loaded once with its event log; lookups check the caller."""

    def __init__(self, store: Store, writer: EventWriter, cluster: Cluster | None) -> None:
        self._store = store
        self._writer = writer
        self._cluster = cluster
        self._live: dict[str, LiveSession] = {}
        # The sessions whose history is kept, least recently used first.
        self._histories: OrderedDict[str, None] = OrderedDict()

    def get(self, session_id: str) -> LiveSession | None:
        return self._live.get(session_id)

    def items(self) -> list[tuple[str, LiveSession]]:
        return list(self._live.items())

    def pop(self, session_id: str) -> LiveSession | None:
        self._histories.pop(session_id, None)
        return self._live.pop(session_id, None)

    def history(self, live: LiveSession, record: SessionRecord) -> list[Message] | None:
        """The kept history of the session, if it is still the stored one: as many
        messages as the store counts (another replica, or recovery, may have added some)."""
        history = live.history
        count = record.message_count
        if history is None or len(history) != count or (history and history[-1].index != count):
            live.history = None
            return None
        self._histories.move_to_end(record.id)
        return history

    def keep_history(self, live: LiveSession, history: list[Message]) -> None:
        """Keeps a session's history (the turn that loaded it appends to it), for the
        HISTORIES most recently used sessions."""
        session_id = live.log.session_id
        live.history = history
        self._histories[session_id] = None
        self._histories.move_to_end(session_id)
        while len(self._histories) > HISTORIES:
            evicted, _ = self._histories.popitem(last=False)
            if (other := self._live.get(evicted)) is not None:
                other.history = None

    def __len__(self) -> int:
        return len(self._live)

    async def load(self, session_id: str, record: SessionRecord | None = None) -> LiveSession:
        """The live session, loaded from the store the first time (any caller), or from
        `record` when the caller has just read it."""
        live = self._live.get(session_id)
        if live is not None:
            return live
        if record is None or record.id != session_id:
            record = await self.record(session_id, None)
        live = self._live.get(session_id)  # another task may have loaded it meanwhile
        if live is None:
            live = LiveSession(EventLog(session_id, record.last_seq, self._writer), record.tenant)
            self._live[session_id] = live
        return live

    async def record(self, session_id: str, caller: Caller | None) -> SessionRecord:
        """The stored session, if `caller` may see it (another tenant's is NOT_FOUND too);
        None: the engine itself asks."""
        if not session_id:
            raise InvalidArgument("session_id is required")
        record = await self._store.get_session(session_id)
        if record is None or (caller is not None and not caller.sees(record.tenant)):
            raise errors.session_not_found(session_id)
        return record

    async def visible(self, session_id: str, caller: Caller) -> LiveSession:
        """The live session, if `caller` may see it."""
        live = await self.load(session_id)
        if not caller.sees(live.tenant):
            raise errors.session_not_found(session_id)
        return live

    def turns(self) -> list[Turn]:
        return [live.turn for live in self._live.values() if live.turn is not None]

    def running_turns(self, tenant: str | None = None) -> int:
        """Turns running now, of `tenant` (all when None)."""
        return sum(
            1
            for live in self._live.values()
            if live.turn is not None and (tenant is None or live.tenant == tenant)
        )

    def running_turn_id(self, record: SessionRecord) -> str:
        """The turn running on the session: here, or (with replicas) on another replica."""
        live = self._live.get(record.id)
        if live is not None and live.turn is not None:
            return live.turn.id
        return record.active_turn_id if self._cluster is not None else ""

    def view(self, record: SessionRecord) -> SessionRecord:
        """The stored record with what only this replica knows yet (a turn running here)."""
        live = self._live.get(record.id)
        if live is not None and live.turn is not None:  # else the stored record is current
            record.last_seq = max(record.last_seq, live.log.stored_seq)
            record.active_turn_id = live.turn.id
        return record


@dataclass
class Core:
    """What the engine's parts share: the data, the providers and tools, the settings."""

    store: Store
    providers: ProviderRegistry
    tools: ToolRegistry
    settings: EngineSettings
    # Set when replicas share the database: leases, remote events and commands.
    cluster: Cluster | None
    writer: EventWriter
    live: LiveSessions
    profiles: ProfileCatalog
    # The API key variables sessions may name (the default provider's included).
    keys: ProviderKeys
    background: set[asyncio.Task[None]] = field(default_factory=set)
    snapshots: Snapshots = field(default_factory=lambda: Snapshots(None))
    closing: bool = False  # the engine is shutting down: start nothing more

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` in the background until it ends or the engine closes."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
