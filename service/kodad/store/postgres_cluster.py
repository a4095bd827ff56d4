"""How kodad replicas sharing one PostgreSQL database coordinate (the Cluster protocol).

A running turn is owned by one replica through a lease row (owner, expiry, fencing token)
renewed while it runs; the store checks the token in every write of the turn. Committed
events are announced with NOTIFY (other replicas' watchers follow them), and commands for a
turn another replica owns travel through the `commands` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence

import asyncpg

from kodad.domain.events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    LoopCapReached,
    ToolCallFinished,
    UserQuestion,
)
from kodad.store import codec
from kodad.store.base import LeaseHeld, ReplicaHandler, StaleLease, uninterruptible
from kodad.store.postgres_db import Connection

log = logging.getLogger(__name__)

RELISTEN_DELAY_S = 1.0
EVENTS_CHANNEL = "kodad_events"
# A notification's payload is at most 8,000 bytes; events_notices stays below.
NOTICE_BYTES = 7_000
COMMANDS_CHANNEL = "kodad_commands"
REPLIES_CHANNEL = "kodad_replies"


def events_notices(last_seqs: Mapping[str, int]) -> list[str]:
    """The EVENTS_CHANNEL payloads announcing a commit: one line "<session id> <last seq>"
    per session, as few payloads as fit (one notification per commit, not per session)."""
    notices: list[str] = []
    lines: list[str] = []
    size = 0
    for session_id, seq in last_seqs.items():
        line = f"{session_id} {seq}"
        if lines and size + len(line) + 1 > NOTICE_BYTES:
            notices.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        notices.append("\n".join(lines))
    return notices


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PostgresCluster:
    """Leases, notifications and commands between replicas, over the store's pool (`pool`)
    and a listening connection of its own."""

    def __init__(
        self,
        dsn: str,
        pool: Callable[[], asyncpg.Pool],
        *,
        replica_id: str = "",
        lease_ttl_s: float = 15.0,
    ) -> None:
        self.dsn = dsn
        self._pool = pool
        self.replica_id = replica_id or default_replica_id()
        self.lease_ttl_s = lease_ttl_s
        self._listener: asyncpg.Connection | None = None
        # Fencing tokens of the leases this replica holds, by session.
        self.tokens: dict[str, int] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self._handler: ReplicaHandler | None = None
        self._relisten: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Gives up the leases rows name this replica as the owner of (a restarted replica
        runs no turn yet: recovery ends those at once instead of when they expire), then
        starts renewing the leases it takes. Replica ids must be unique."""
        await self._pool().execute(
            "UPDATE leases SET expires_at = '-infinity' WHERE owner = $1", self.replica_id
        )
        self._renewer = asyncio.create_task(self._renew_leases(), name="lease-renewer")

    async def stop(self) -> None:
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

    async def open_requests(self, session_id: str, turn_id: str) -> list[Event]:
        """The events that asked questions of a running turn (its sub-agents' included) that
        are not answered yet, by seq: approvals without approval_resolved, ask_user questions
        whose call has not finished, and a loop question that is the session's last event."""
        columns = "e." + codec.EVENT_COLUMNS.replace(", ", ", e.")
        rows = await self._pool().fetch(
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
        await self._pool().fetchval("SELECT 1")

    # Leases

    async def fence(self, conn: Connection, session_id: str) -> None:
        """Inside a transaction: fails unless this replica still holds the session's lease
        (when it took one). The row lock makes a takeover wait for this transaction."""
        await self.fence_all(conn, [session_id])

    async def fence_all(self, conn: Connection, session_ids: Sequence[str]) -> None:
        """fence() for several sessions (`session_ids` in order), in one statement."""
        held = {sid: self.tokens[sid] for sid in session_ids if sid in self.tokens}
        if not held:
            return
        rows = await conn.fetch(
            "SELECT session_id, token FROM leases WHERE session_id = ANY($1::text[])"
            " ORDER BY session_id FOR SHARE",
            list(held),
        )
        current = {r["session_id"]: r["token"] for r in rows}
        for sid, token in held.items():
            if current.get(sid) != token:
                raise StaleLease(sid)

    @uninterruptible
    async def acquire_lease(self, session_id: str, turn_id: str) -> int:
        """Takes the session's lease for `turn_id`: when it is free, expired or already this
        replica's. Returns its fencing token; raises LeaseHeld naming the replica that holds
        it. The take is one statement, atomic by itself: no transaction around it."""
        pool = self._pool()
        token = await pool.fetchval(
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
            row = await pool.fetchrow(
                "SELECT owner, turn_id FROM leases WHERE session_id = $1", session_id
            )
            owner, held_for = (row["owner"], row["turn_id"]) if row else ("?", "?")
            raise LeaseHeld(session_id, owner, held_for)
        self.tokens[session_id] = int(token)
        return int(token)

    @uninterruptible
    async def release_lease(self, session_id: str, token: int) -> None:
        """Gives up the lease taken with `token` (unless a later one of this replica
        replaced it)."""
        if self.tokens.get(session_id) == token:
            del self.tokens[session_id]
            await self._pool().execute(
                "UPDATE leases SET expires_at = '-infinity' WHERE session_id = $1 AND token = $2",
                session_id,
                token,
            )

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            if not self.tokens:
                continue
            held = dict(self.tokens)
            try:
                renewed = await self._pool().fetch(
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
                if self.tokens.get(session_id) == held[session_id] and self._handler:
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
            for line in str(payload).split("\n"):
                session_id, seq = line.rsplit(" ", 1)
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
        async with self._pool().acquire() as conn, conn.transaction():
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
            await self._pool().execute("DELETE FROM commands WHERE id = $1", command_id)
            return "UNAVAILABLE", f"the replica running turn {turn_id} did not answer"
        finally:
            self._replies.pop(command_id, None)

    async def take_commands(self, session_id: str) -> list[tuple[int, str, str]]:
        """The commands waiting for the session's turn, removed: (id, turn_id, body)."""
        rows = await self._pool().fetch(
            "DELETE FROM commands WHERE session_id = $1 RETURNING id, turn_id, body", session_id
        )
        return sorted((int(r["id"]), r["turn_id"], r["body"]) for r in rows)

    async def reply_command(self, command_id: int, code: str, message: str) -> None:
        payload = json.dumps({"id": command_id, "code": code, "message": message[:4000]})
        await self._pool().execute("SELECT pg_notify($1, $2)", REPLIES_CHANNEL, payload)
