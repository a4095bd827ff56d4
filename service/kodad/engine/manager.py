"""SessionManager: the engine's one entry point, over its parts (sessions, models, launch,
sub-agents, commands, watch, recovery and replicas)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from kodad import metrics
from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, InvalidArgument, KodaError, NotFound
from kodad.domain.events import Event, FileDiffStat, SessionRewound
from kodad.domain.model import FileChange, Message, ModelInfo, ProviderConfig, SessionRecord
from kodad.engine import recovery, watch
from kodad.engine.checkpoints import Snapshots
from kodad.engine.control import Cancel, Commands, TurnCommand
from kodad.engine.eventlog import EventWriter
from kodad.engine.inputs import TurnInput
from kodad.engine.launch import Launcher
from kodad.engine.live import Core, LiveSessions
from kodad.engine.models import Models
from kodad.engine.profiles import ProfileCatalog
from kodad.engine.queue import Queued, Started, TurnQueue
from kodad.engine.rewind import Rewinds
from kodad.engine.sessions import Sessions
from kodad.engine.settings import EngineSettings
from kodad.engine.subagents import Subagents
from kodad.engine.turn import Turn
from kodad.providers import ProviderRegistry
from kodad.store.base import Cluster, Store
from kodad.tools import ToolRegistry

log = logging.getLogger(__name__)


class SessionManager:
    """Owns turns (as tasks), event logs and their fan-out; the store owns the data. Every
    call on behalf of a client names its caller."""

    def __init__(
        self,
        store: Store,
        providers: ProviderRegistry,
        tools: ToolRegistry,
        settings: EngineSettings,
        cluster: Cluster | None = None,
    ) -> None:
        writer = EventWriter(store)
        self._core = core = Core(
            store=store,
            providers=providers,
            tools=tools,
            settings=settings,
            cluster=cluster,
            writer=writer,
            live=LiveSessions(store, writer, cluster),
            profiles=ProfileCatalog(settings.profiles_dir),
            keys=settings.provider_keys.with_default(settings.default_provider),
            snapshots=Snapshots(settings.snapshot_dir, settings.snapshot_limits),
        )
        self._sessions = Sessions(core)
        self._models = Models(core)
        self._launcher = Launcher(core, self._models)
        self._launcher.subagents = Subagents(core, self._launcher).run
        self._queue = TurnQueue(core, self._launcher)
        self._launcher.after_turn = self._queue.after_turn
        self._commands = Commands(core, self._queue)
        self._rewinds = Rewinds(core)
        self._reaper: asyncio.Task[None] | None = None
        metrics.track(self)

    @property
    def settings(self) -> EngineSettings:
        return self._core.settings

    @property
    def tools(self) -> ToolRegistry:
        return self._core.tools

    @property
    def profiles(self) -> ProfileCatalog:
        return self._core.profiles

    @property
    def cluster(self) -> Cluster | None:
        return self._core.cluster

    async def start(self) -> None:
        core = self._core
        core.writer.start()
        await recovery.recover(core)
        if core.cluster is not None:
            await core.cluster.listen(self)
            self._reaper = asyncio.create_task(self._reap(), name="reaper")
        await self._queue.resume()

    async def close(self) -> None:
        """Cancels running turns, waits until they are stored, then flushes the event log."""
        core = self._core
        core.closing = True
        for task in (self._reaper, *core.background):
            if task is not None:
                task.cancel()
        turns = core.live.turns()
        for turn in turns:
            turn.cancel()
        await asyncio.gather(*(t.task for t in turns if t.task is not None), return_exceptions=True)
        sessions = [live for _, live in core.live.items()]
        for live in sessions:
            live.log.close()
        await asyncio.gather(*(live.mcp.aclose() for live in sessions if live.mcp))
        await core.writer.aclose()

    async def _reap(self) -> None:
        """Ends, every half lease period, the turns of replicas that stopped renewing."""
        assert self._core.cluster is not None
        while True:
            await asyncio.sleep(self._core.cluster.lease_ttl_s / 2)
            try:
                await recovery.recover(self._core)
                await self._queue.resume()  # the queues a lost replica left waiting
            except Exception:
                log.exception("taking over turns of lost replicas failed; retrying")

    # Replicas (kodad.store.base.ReplicaHandler): what the database reports.

    def lease_lost(self, session_id: str) -> None:
        """Another replica took over a session whose turn runs here: its streams end
        (ABORTED) and the turn stops; its writes would be refused anyway."""
        live = self._core.live.get(session_id)
        if live is not None and live.turn is not None:
            live.log.fence()
            live.turn.cancel()

    def remote_events(self, session_id: str, last_seq: int) -> None:
        """Another replica (or this one) stored events of a session up to `last_seq`."""
        live = self._core.live.get(session_id)
        if live is not None and live.turn is None and last_seq > live.log.stored_seq:
            self._core.spawn(live.log.catch_up(self._core.store))

    def resync(self) -> None:
        for session_id, live in self._core.live.items():
            if live.turn is None:
                self._core.spawn(live.log.catch_up(self._core.store))
            else:
                self._core.spawn(self.remote_commands(session_id))

    async def remote_commands(self, session_id: str) -> None:
        await self._commands.from_replicas(session_id)

    # Metrics (kodad.metrics)

    def live_sessions(self) -> int:
        return len(self._core.live)

    def approvals_waiting(self) -> int:
        # A sub-agent's turn shares its parent's requests: count each set once.
        turns = self._core.live.turns()
        return sum(len(p) for p in {id(t.pending): t.pending for t in turns}.values())

    def running_turns(self, tenant: str | None = None) -> int:
        return self._core.live.running_turns(tenant)

    # Sessions

    async def create_session(
        self, spec: SessionRecord, *, default_provider: bool = False, caller: Caller
    ) -> SessionRecord:
        return await self._sessions.create(spec, default_provider=default_provider, caller=caller)

    async def get_session(self, session_id: str, *, caller: Caller) -> SessionRecord:
        return await self._sessions.get(session_id, caller=caller)

    async def list_sessions(
        self, *, page_size: int, page_token: str, labels: Mapping[str, str], caller: Caller
    ) -> tuple[list[SessionRecord], str]:
        return await self._sessions.list_sessions(
            page_size=page_size, page_token=page_token, labels=labels, caller=caller
        )

    async def update_session(
        self, changes: SessionRecord, paths: list[str], *, caller: Caller
    ) -> SessionRecord:
        return await self._sessions.update(changes, paths, caller=caller)

    async def delete_session(self, session_id: str, *, caller: Caller) -> None:
        await self._sessions.delete(session_id, caller=caller)

    async def fork_session(
        self, session_id: str, title: str, *, caller: Caller, at_turn_id: str = "",
        workspace_copy: str = "",
    ) -> SessionRecord:  # fmt: skip
        """A copy of the session; with `at_turn_id` its history ends with that turn, and
        with `workspace_copy` it works in a copy of the workspace as that turn left it."""
        if not at_turn_id:
            if workspace_copy:
                raise InvalidArgument("workspace_copy needs at_turn_id")
            return await self._sessions.fork(session_id, title, caller=caller)
        state = await self._rewinds.state_after(session_id, at_turn_id, caller=caller)
        copy = self._rewinds.new_workspace(workspace_copy, caller) if workspace_copy else None
        record = await self._sessions.fork(
            session_id, title, caller=caller, workspace=str(copy) if copy else ""
        )
        await self._rewinds.keep_history_to(record.id, at_turn_id)
        if copy is not None:
            await self._rewinds.materialise(session_id, state, copy)
        return await self._sessions.get(record.id, caller=caller)

    async def list_messages(
        self, session_id: str, *, page_size: int, page_token: str, caller: Caller
    ) -> tuple[list[Message], str]:
        return await self._sessions.messages(
            session_id, page_size=page_size, page_token=page_token, caller=caller
        )

    async def list_file_changes(
        self, session_id: str, *, turn_id: str, page_size: int, page_token: str, caller: Caller
    ) -> tuple[list[FileChange], str]:
        return await self._sessions.file_changes(
            session_id, turn_id=turn_id, page_size=page_size, page_token=page_token, caller=caller
        )

    async def list_models(
        self, provider: ProviderConfig | None, session_id: str, *, caller: Caller
    ) -> list[ModelInfo]:
        return await self._models.of_provider(provider, session_id, caller=caller)

    # Turns

    async def start_turn(self, session_id: str, turn_input: TurnInput, *, caller: Caller) -> Turn:
        return await self._launcher.start_turn(session_id, turn_input, caller=caller)

    async def run_turn(self, session_id: str, turn_input: TurnInput, *, caller: Caller) -> Started:
        """Starts a turn, or as `turn_input.when_busy` says: steers or queues."""
        return await self._queue.start(session_id, turn_input, caller=caller)

    def follow_queued(self, session_id: str, queued: Queued) -> AsyncIterator[Event]:
        return self._queue.follow(session_id, queued.turn_id, queued.after_seq)

    async def remove_queued_turn(self, session_id: str, turn_id: str, *, caller: Caller) -> None:
        if not session_id or not turn_id:
            raise InvalidArgument("session_id and turn_id are required")
        await self._queue.remove(session_id, turn_id, caller=caller, why="removed")

    async def cancel_turn(
        self, session_id: str, turn_id: str, *, clear_queue: bool, caller: Caller
    ) -> str:
        """Cancels the running turn (and first, with `clear_queue`, empties the queue)."""
        if clear_queue:
            await self._core.live.record(session_id, caller)
            await self._queue.clear(session_id)
        try:
            return await self._commands.submit(session_id, turn_id, Cancel(), caller=caller)
        except FailedPrecondition as e:
            if clear_queue and e.reason == errors.NO_RUNNING_TURN:
                return ""  # the queue was all there was to cancel
            raise

    async def rewind_session(
        self, session_id: str, *, to_turn_id: str, to_seq: int, files: bool, history: bool,
        force: bool, caller: Caller,
    ) -> SessionRewound:  # fmt: skip
        return await self._rewinds.rewind(
            session_id, to_turn_id=to_turn_id, to_seq=to_seq, files=files, history=history,
            force=force, caller=caller,
        )  # fmt: skip

    async def unrewind_session(
        self, session_id: str, *, force: bool, caller: Caller
    ) -> SessionRewound:
        return await self._rewinds.unrewind(session_id, force=force, caller=caller)

    async def turn_diff(
        self, session_id: str, turn_id: str, *, caller: Caller
    ) -> tuple[str, list[FileDiffStat]]:
        return await self._rewinds.turn_diff(session_id, turn_id, caller=caller)

    def drop_queued(self, session_id: str, turn_id: str, *, caller: Caller) -> None:
        """For a queued turn's stream that went away: off the queue, or cancelled if it
        started (in the background: the stream is gone)."""

        async def drop() -> None:
            try:
                await self._queue.remove(session_id, turn_id, caller=caller, why="cancelled")
            except NotFound:
                with contextlib.suppress(KodaError):
                    await self._commands.submit(session_id, turn_id, Cancel(), caller=caller)

        self._core.spawn(drop())

    async def compact_session(self, session_id: str, *, caller: Caller) -> tuple[str, int]:
        return await self._launcher.compact_session(session_id, caller=caller)

    def follow_turn(self, turn: Turn) -> AsyncIterator[Event]:
        return self._launcher.follow_turn(turn)

    async def submit_command(
        self, session_id: str, turn_id: str, command: TurnCommand, *, caller: Caller
    ) -> str:
        return await self._commands.submit(session_id, turn_id, command, caller=caller)

    async def stream_command(self, turn: Turn, command: TurnCommand | KodaError) -> None:
        await self._commands.from_stream(turn, command)

    def watch(self, session_id: str, after_seq: int, *, caller: Caller) -> AsyncIterator[Event]:
        return watch.watch(self._core, session_id, after_seq, caller)
