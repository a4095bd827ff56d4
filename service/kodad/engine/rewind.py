"""Rewinding a session: its workspace to a checkpoint, its history to before a turn, both
recorded (`session_rewound`) and undoable; and a turn's diff from its checkpoints."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from kodad.domain import errors
from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from kodad.domain.events import CheckpointTaken, Event, FileDiffStat, SessionRewound, TurnStarted
from kodad.domain.ids import new_id
from kodad.domain.model import Message, Role
from kodad.engine import outside
from kodad.engine.checkpoints import line_stats, unified_diff
from kodad.engine.live import Core
from kodad.engine.snapshots import WorkspaceSnapshots, changes
from kodad.store import codec

_PAGE = 1000
_SHOWN_CONFLICTS = 20


@dataclass(frozen=True)
class _Log:
    """What a rewind reads of a session's log: its checkpoints, turn starts and rewinds."""

    events: list[Event]

    def checkpoints(self) -> list[tuple[Event, CheckpointTaken]]:
        return [(e, e.payload) for e in self.events if isinstance(e.payload, CheckpointTaken)]

    def started(self, turn_id: str) -> Event | None:
        return next(
            (e for e in self.events if e.turn_id == turn_id and isinstance(e.payload, TurnStarted)),
            None,
        )

    def last_state(self) -> str:
        """The tree kodad last left the workspace in: its latest checkpoint or rewind."""
        for event in reversed(self.events):
            p = event.payload
            if isinstance(p, CheckpointTaken):
                return p.checkpoint_id
            if isinstance(p, SessionRewound) and p.checkpoint_id:
                return p.checkpoint_id
        return ""

    def before(self, turn_id: str) -> str:
        """The workspace just before `turn_id`: its first checkpoint, else the last one
        before it began, else the first taken before a later turn."""
        start = self.started(turn_id)
        if start is None:
            raise NotFound(f"turn {turn_id} is not a turn of this session")
        points = self.checkpoints()
        own = [p for e, p in points if e.turn_id == turn_id and not p.call_id]
        earlier = [p for e, p in points if e.seq < start.seq]
        later = [p for e, p in points if e.seq > start.seq and not p.call_id]
        chosen = own or earlier[-1:] or later[:1]
        return chosen[0].checkpoint_id if chosen else ""


async def _read_log(core: Core, session_id: str) -> _Log:
    events: list[Event] = []
    while True:
        page = await core.store.list_events(session_id, after_seq=len(events), limit=_PAGE)
        events += page
        if len(page) < _PAGE:
            return _Log(events)


class Rewinds:
    def __init__(self, core: Core) -> None:
        self._core = core

    def _snapshots(self, workspace: str) -> WorkspaceSnapshots:
        snaps = self._core.snapshots.of(workspace)
        if snaps is None:
            raise FailedPrecondition("this server keeps no checkpoints (no --snapshot-dir)")
        return snaps

    async def rewind(
        self, session_id: str, *, to_turn_id: str, to_seq: int, files: bool, history: bool,
        force: bool, caller: Caller,
    ) -> SessionRewound:  # fmt: skip
        if bool(to_turn_id) == bool(to_seq):
            raise InvalidArgument("give exactly one of to_turn_id and to_seq")
        if not files and not history:
            raise InvalidArgument("a rewind restores files, history or both")
        core = self._core
        record = await core.live.record(session_id, caller)
        rewind_id = new_id("w")
        async with outside.hold(core, session_id, rewind_id) as live:
            log = await _read_log(core, session_id)
            turn_id, target, since = to_turn_id, "", 0
            if to_seq:
                points = [(e, p) for e, p in log.checkpoints() if e.seq <= to_seq]
                if not points:
                    raise NotFound(f"no checkpoint of session {session_id} at or before {to_seq}")
                event, point = points[-1]
                target, turn_id, since = point.checkpoint_id, event.turn_id, event.create_time
            elif files:
                target = log.before(to_turn_id)
            elif log.started(to_turn_id) is None:
                raise NotFound(f"turn {to_turn_id} is not a turn of session {session_id}")
            restored: list[str] = []
            undo, state = "", log.last_state()
            if files and target:
                restored, undo = await self._restore(
                    record.workspace, target, state, force, session_id
                )
                state = target
            removed, blob = 0, ""
            if history:
                removed, blob = await self._cut_history(session_id, turn_id, since)
            rewound = SessionRewound(
                turn_id, to_seq, tuple(restored), removed, False, state, undo, blob
            )
            live.log.emit(rewind_id, rewound)
        return rewound

    async def unrewind(self, session_id: str, *, force: bool, caller: Caller) -> SessionRewound:
        core = self._core
        record = await core.live.record(session_id, caller)
        rewind_id = new_id("w")
        async with outside.hold(core, session_id, rewind_id) as live:
            log = await _read_log(core, session_id)
            last = next(
                (e.payload for e in reversed(log.events) if isinstance(e.payload, SessionRewound)),
                None,
            )
            if last is None or last.undone:
                raise FailedPrecondition(f"session {session_id} has no rewind to undo")
            restored: list[str] = []
            state = log.last_state()
            if last.undo_checkpoint_id:
                restored, _ = await self._restore(
                    record.workspace, last.undo_checkpoint_id, state, force, session_id
                )
                state = last.undo_checkpoint_id
            removed = 0
            if last.history_blob:
                removed = -await self._put_back(session_id, last.history_blob)
            undone = SessionRewound(
                last.to_turn_id, last.to_seq, tuple(restored), removed, True, state, "", ""
            )
            live.log.emit(rewind_id, undone)
        return undone

    async def _restore(
        self, workspace: str, target: str, known: str, force: bool, session_id: str
    ) -> tuple[list[str], str]:
        """Restores `target` over the workspace; refuses to overwrite what changed outside
        kodad since `known` (its last state) unless `force`. Returns (paths changed, the
        checkpoint taken just before, which undoes it)."""
        snaps = self._snapshots(workspace)
        if not snaps.objects.has(target):
            raise FailedPrecondition(
                f"checkpoint {target[:12]} is not in this server's snapshot store: every replica"
                " must share one --snapshot-dir"
            )
        now = await self._core.snapshots.capture(workspace)
        assert now is not None
        async with self._core.snapshots.lock(workspace):

            def plan() -> tuple[dict[str, str], dict[str, str]]:
                current = snaps.files(now.tree)
                outside_edits = changes(snaps.files(known), current) if known else {}
                return outside_edits, changes(current, snaps.files(target))

            outside_edits, to_change = await asyncio.to_thread(plan)
            conflicts = sorted(set(outside_edits) & set(to_change))
            if conflicts and not force:
                shown = ", ".join(conflicts[:_SHOWN_CONFLICTS])
                raise FailedPrecondition(
                    f"{len(conflicts)} file(s) changed outside kodad since its last checkpoint"
                    f" would be overwritten: {shown}; rewind with force to overwrite them",
                    reason=errors.CHECKPOINT_CONFLICT,
                    metadata={"session_id": session_id, "paths": ",".join(conflicts)[:2000]},
                )
            restored = await asyncio.to_thread(snaps.restore, target, now.tree)
        return restored, now.tree

    async def _cut_history(self, session_id: str, turn_id: str, since: int) -> tuple[int, str]:
        """Takes the messages of `turn_id` and after (with `since`, a checkpoint's time: those
        stored after it) off the history; keeps them in the snapshot store (UnrewindSession
        puts them back). Returns (count, their blob)."""
        store = self._core.store
        messages = await store.list_messages(session_id)
        if since:
            later = (i for i, m in enumerate(messages) if m.create_time > since)
        else:
            later = (i for i, m in enumerate(messages) if m.turn_id == turn_id)
        first = next(later, len(messages))
        while since and first < len(messages) and messages[first].role is Role.TOOL:
            first += 1  # the results of calls made before the checkpoint stay with them
        cut = messages[first:]
        if not cut:
            return 0, ""
        body = json.dumps([_message_json(m) for m in cut]).encode()
        objects = self._core.snapshots.of(await self._workspace(session_id))
        blob = objects.objects.put(body) if objects is not None else ""
        await store.truncate_messages(session_id, first)
        self._forget_history(session_id)
        return len(cut), blob

    async def _put_back(self, session_id: str, blob: str) -> int:
        objects = self._core.snapshots.of(await self._workspace(session_id))
        assert objects is not None
        items = json.loads(objects.objects.get(blob))
        for item in items:
            message = codec.decode_message(
                index=0, turn_id=item["turn_id"], role=item["role"], body=item["body"],
                create_time=0,
            )  # fmt: skip
            await self._core.store.append_message(session_id, message)
        self._forget_history(session_id)
        return len(items)

    async def _workspace(self, session_id: str) -> str:
        record = await self._core.store.get_session(session_id)
        assert record is not None
        return record.workspace

    def _forget_history(self, session_id: str) -> None:
        live = self._core.live.get(session_id)
        if live is not None:
            live.history = None

    async def state_after(self, session_id: str, turn_id: str, *, caller: Caller) -> str:
        """The checkpoint of the workspace as `turn_id` left it ("" when none was taken)."""
        await self._core.live.record(session_id, caller)
        log = await _read_log(self._core, session_id)
        if log.started(turn_id) is None:
            raise NotFound(f"turn {turn_id} is not a turn of session {session_id}")
        own = [p for e, p in log.checkpoints() if e.turn_id == turn_id]
        return own[-1].checkpoint_id if own else log.before(turn_id)

    def new_workspace(self, path: str, caller: Caller) -> Path:
        """A directory to copy a workspace into: absolute, new, under the caller's roots."""
        target = Path(path)
        if not target.is_absolute():
            raise InvalidArgument(f"workspace_copy {path!r} must be an absolute path")
        if target.exists():
            raise FailedPrecondition(f"workspace_copy {path} exists already")
        caller.check_workspace(str(target.parent))
        return target

    async def keep_history_to(self, session_id: str, turn_id: str) -> None:
        """Cuts a (forked) session's history after the last message of `turn_id`."""
        messages = await self._core.store.list_messages(session_id)
        last = max((i for i, m in enumerate(messages) if m.turn_id == turn_id), default=-1)
        await self._core.store.truncate_messages(session_id, last + 1)

    async def materialise(self, source_session: str, tree: str, target: Path) -> None:
        """Writes snapshot `tree` of the source's workspace into the new directory `target`."""
        record = await self._core.store.get_session(source_session)
        assert record is not None
        snaps = self._snapshots(record.workspace)

        def write() -> None:
            target.mkdir(parents=True)
            if tree:
                WorkspaceSnapshots(snaps.objects, target, snaps.limits).restore(tree, "")

        await asyncio.to_thread(write)

    async def turn_diff(
        self, session_id: str, turn_id: str, *, caller: Caller
    ) -> tuple[str, list[FileDiffStat]]:
        """The unified diff and per-file stats of what `turn_id` changed."""
        if not turn_id:
            raise InvalidArgument("turn_id is required")
        record = await self._core.live.record(session_id, caller)
        snaps = self._snapshots(record.workspace)
        log = await _read_log(self._core, session_id)
        points = [p for e, p in log.checkpoints() if e.turn_id == turn_id]
        if len(points) < 2:
            raise NotFound(f"turn {turn_id} of session {session_id} changed no file")
        first, last = points[0].checkpoint_id, points[-1].checkpoint_id
        return await asyncio.to_thread(
            lambda: (unified_diff(snaps, first, last), line_stats(snaps, first, last))
        )


def _message_json(m: Message) -> dict[str, str]:
    return {"turn_id": m.turn_id, "role": m.role.value, "body": codec.encode_message_body(m)}
