"""The Store protocol: everything that outlives a turn goes through it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from kodad.domain.events import Event
from kodad.domain.model import (
    ApprovalRule,
    FileChange,
    FileChangeKind,
    Message,
    QueuedTurn,
    SessionRecord,
    Todo,
    TurnEndReason,
    Usage,
)


@dataclass(frozen=True)
class TurnRecord:
    """A turn as stored; `reason` is None while it runs (or when a crash interrupted it)."""

    session_id: str
    turn_id: str
    start_time: int
    end_time: int = 0
    reason: TurnEndReason | None = None
    error_code: str = ""
    error_message: str = ""
    usage: Usage = field(default_factory=Usage)


class LeaseHeld(Exception):
    """Another replica runs a turn on the session."""

    def __init__(self, session_id: str, owner: str, turn_id: str) -> None:
        super().__init__(f"session {session_id} is running turn {turn_id} on replica {owner}")
        self.owner = owner
        self.turn_id = turn_id


class StaleLease(Exception):
    """A write of a turn whose lease another replica has taken since (fencing)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"this replica lost the lease of session {session_id}")
        self.session_id = session_id


class ReplicaHandler(Protocol):
    """What a replica does when the database reports something (SessionManager)."""

    def remote_events(self, session_id: str, last_seq: int) -> None:
        """Some replica stored the session's events up to `last_seq`."""
        ...

    async def remote_commands(self, session_id: str) -> None:
        """Commands for the session's turn wait in the database."""
        ...

    def lease_lost(self, session_id: str) -> None:
        """Another replica took over a lease this one held."""
        ...

    def resync(self) -> None:
        """Notifications may have been missed (the listening connection was re-made):
        catch up on every session."""
        ...


class Cluster(Protocol):
    """How replicas sharing one database coordinate (the PostgreSQL store is one)."""

    replica_id: str
    lease_ttl_s: float

    async def acquire_lease(self, session_id: str, turn_id: str) -> int:
        """Takes the session's lease for a turn and returns its fencing token; LeaseHeld
        when another replica has it."""
        ...

    async def release_lease(self, session_id: str, token: int) -> None: ...

    async def listen(self, handler: ReplicaHandler) -> None:
        """Starts reporting event commits, commands and lost leases to `handler`."""
        ...

    async def send_command(
        self, session_id: str, turn_id: str, body: str, timeout_s: float
    ) -> tuple[str, str]:
        """Sends a command to the replica owning the turn: ("", "") or (kind, message)."""
        ...

    async def take_commands(self, session_id: str) -> list[tuple[int, str, str]]: ...

    async def reply_command(self, command_id: int, code: str, message: str) -> None: ...

    async def ping(self) -> None:
        """Returns once the database answers."""
        ...

    async def open_requests(self, session_id: str, turn_id: str) -> list[Event]:
        """The stored events asking questions of a running turn that are still open."""
        ...


class Store(Protocol):
    """Persistence for sessions. Implementations are safe for concurrent use by one process.

    Methods that change data commit before they return.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    async def list_sessions(
        self,
        *,
        limit: int,
        before_id: str | None,
        labels: Mapping[str, str],
        tenant: str | None = None,
    ) -> list[SessionRecord]:
        """Sessions with id < `before_id` (all if None) carrying every label, of `tenant`
        (any if None), newest first."""
        ...

    async def owns_file(self, session_id: str, path: str) -> bool:
        """Whether the session created `path` (workspace-relative) and has not deleted it
        since: the session owns it. Edits confer no ownership."""
        ...

    async def set_todos(self, session_id: str, todos: tuple[Todo, ...]) -> None:
        """Replaces the session's task list."""
        ...

    async def count_sessions(self, tenant: str) -> int:
        """How many sessions `tenant` owns."""
        ...

    async def update_session(self, record: SessionRecord) -> None:
        """Writes the settings of `record` (title, labels, provider, modes, prompt)."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Deletes the session and everything of it; False when it did not exist."""
        ...

    async def fork_session(self, source_id: str, record: SessionRecord) -> None:
        """Creates `record` with a copy of the source's messages."""
        ...

    async def append_message(self, session_id: str, message: Message) -> Message:
        """Appends to the history; returns the message with its index and time set."""
        ...

    async def list_messages(
        self, session_id: str, *, after_index: int = 0, limit: int | None = None
    ) -> list[Message]: ...

    async def append_events(self, events: Sequence[Event]) -> None:
        """Appends events (any sessions, ascending seq per session) in one transaction."""
        ...

    async def list_events(self, session_id: str, *, after_seq: int, limit: int) -> list[Event]: ...

    async def begin_turn(
        self, turn: TurnRecord, first: Message | None = None, *, title: str = ""
    ) -> Message | None:
        """Records a running turn and marks it active on its session; in the same
        transaction appends `first` (the turn's prompt; returned stored, as append_message
        returns it) and names an untitled session `title`. One write where a turn's start
        made three, each waiting its turn under load."""
        ...

    async def end_turn(self, turn: TurnRecord) -> None:
        """Records how a turn ended, adds its usage to the session, clears the active turn."""
        ...

    async def unfinished_turns(self) -> list[TurnRecord]:
        """Turns a stopped process left running (with replicas: whose lease expired)."""
        ...

    async def enqueue_turn(self, session_id: str, turn: QueuedTurn, *, front: bool) -> int:
        """Adds `turn` to the end (or the front) of the session's queue; its position, from 1."""
        ...

    async def queued_turns(self, session_id: str) -> list[QueuedTurn]:
        """The session's queue, next first."""
        ...

    async def take_queued_turn(self, session_id: str) -> QueuedTurn | None:
        """Removes and returns the next queued turn (None when the queue is empty)."""
        ...

    async def remove_queued_turn(self, session_id: str, turn_id: str) -> bool:
        """Removes a queued turn; False when it is not queued."""
        ...

    async def clear_queue(self, session_id: str) -> list[str]:
        """Empties the session's queue; the ids it held."""
        ...

    async def queued_sessions(self) -> list[str]:
        """The sessions whose queue is not empty."""
        ...

    async def truncate_messages(self, session_id: str, keep: int) -> None:
        """Deletes the messages after the first `keep` (a rewind of the history)."""
        ...

    async def add_approval_rule(self, session_id: str, rule: ApprovalRule) -> None:
        """Adds a rule to the session's approval rules (once)."""
        ...

    async def list_file_changes(
        self, session_id: str, *, turn_id: str, after: int, limit: int
    ) -> list[tuple[int, FileChange]]:
        """File changes after cursor `after` (all turns when `turn_id` is empty), oldest
        first, each with the cursor that continues after it."""
        ...

    async def record_file_change(
        self, session_id: str, turn_id: str, path: str, change: FileChangeKind, time: int
    ) -> None: ...


P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


async def finish_then_cancel(write: Coroutine[Any, Any, T]) -> T:
    """Runs a write to its end even when the caller is cancelled meanwhile (a write cut
    between BEGIN and COMMIT would leave the connection in a transaction, and the caller
    would not know what was stored). The cancellation then reaches the caller at its next
    await, after it has seen the result."""
    task = asyncio.ensure_future(write)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled and (current := asyncio.current_task()) is not None:
        current.uncancel()
        current.cancel()
    return result


def uninterruptible(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await finish_then_cancel(method(self, *args, **kwargs))

    return wrapper
