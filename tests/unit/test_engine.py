"""The engine without gRPC: pending requests, turn commands, the turn loop and the manager,
on a real SQLite store, with the scripted provider or an in-memory one a test holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kodad.domain.access import LOCAL, Caller
from kodad.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from kodad.domain.events import (
    ApprovalRequested,
    Event,
    TextDelta,
    ToolCallFinished,
    TurnEnded,
    TurnStarted,
)
from kodad.domain.model import (
    ApprovalMode,
    ApprovalRisk,
    Decision,
    LoopAction,
    Message,
    ModelInfo,
    ProviderConfig,
    ProviderKind,
    Role,
    SessionRecord,
    TurnEndReason,
)
from kodad.engine import pending
from kodad.engine.control import AnswerQuestion, Approve, Cancel, DecideLoop, decode, encode
from kodad.engine.eventlog import EventLog, EventWriter
from kodad.engine.inputs import TurnDeps, TurnInput, TurnLimits
from kodad.engine.manager import SessionManager
from kodad.engine.pending import ApprovalAnswer, LoopAnswer, PendingRequests
from kodad.engine.settings import EngineSettings
from kodad.engine.turn import Turn
from kodad.providers import LlmProvider, ProviderEvent, ProviderRegistry, ProviderRequest, TextChunk
from kodad.store import SqliteStore
from kodad.tools import default_registry


def scripted(*rounds: list[dict[str, Any]]) -> ProviderConfig:
    return ProviderConfig(ProviderKind.SCRIPTED, script_json=json.dumps({"rounds": rounds}))


def call(name: str, call_id: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_call": {"name": name, "id": call_id, "arguments": arguments}}


class HeldProvider:
    """Streams "hello", then holds the stream until the test releases it."""

    def __init__(self) -> None:
        self.streaming = asyncio.Event()
        self.release = asyncio.Event()

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        yield TextChunk("hello")
        self.streaming.set()
        await self.release.wait()
        yield TextChunk(" world")

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def aclose(self) -> None:
        return None


class Providers(ProviderRegistry):
    """The registry, except that SCRIPTED configs without a script get `held`."""

    def __init__(self, held: LlmProvider) -> None:
        super().__init__()
        self._held = held

    def get(self, config: ProviderConfig) -> LlmProvider:
        return super().get(config) if config.script_json else self._held


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "kodad.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def held() -> HeldProvider:
    return HeldProvider()


@pytest.fixture
async def manager(sqlite: SqliteStore, held: HeldProvider) -> AsyncIterator[SessionManager]:
    providers = Providers(held)
    engine = SessionManager(sqlite, providers, default_registry(), EngineSettings())
    await engine.start()
    yield engine
    held.release.set()
    await engine.close()
    await providers.aclose()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


async def new_session(
    manager: SessionManager,
    workspace: Path,
    provider: ProviderConfig,
    mode: ApprovalMode = ApprovalMode.AUTO,
    caller: Caller = LOCAL,
) -> SessionRecord:
    spec = SessionRecord(id="", workspace=str(workspace), provider=provider, approval_mode=mode)
    return await manager.create_session(spec, caller=caller)


async def events_until(stream: AsyncIterator[Event], kind: type[object]) -> list[Event]:
    seen = []
    async for event in stream:
        seen.append(event)
        if isinstance(event.payload, kind):
            return seen
    raise AssertionError(f"the stream ended before a {kind.__name__}: {seen}")


# Pending requests and commands


async def test_pending_requests_are_typed_and_answered_once() -> None:
    requests = PendingRequests()
    asked = Event(
        "s_1", "t_1", 3, 0, ApprovalRequested("r_1", "c_1", "bash", "{}", "Run ls", "$ ls")
    )
    request = requests.open("r_1", pending.APPROVAL, asked)
    assert requests.of_kind(pending.APPROVAL) is request
    assert requests.of_kind(pending.LOOP) is None
    assert requests.events("s_1") == [asked] and requests.events("s_2") == []
    with pytest.raises(NotFound) as wrong_kind:
        requests.answer("r_1", pending.QUESTION, "yes")
    assert wrong_kind.value.reason == "REQUEST_NOT_FOUND"
    requests.answer("r_1", pending.APPROVAL, ApprovalAnswer(Decision.APPROVE))
    assert (await request.future).decision is Decision.APPROVE
    with pytest.raises(FailedPrecondition) as twice:
        requests.answer("r_1", pending.APPROVAL, ApprovalAnswer(Decision.REJECT))
    assert (twice.value.reason, twice.value.metadata) == (
        "REQUEST_ALREADY_ANSWERED",
        {"request_id": "r_1"},
    )
    requests.close("r_1")
    assert len(requests) == 0
    with pytest.raises(FailedPrecondition):
        requests.answer("r_1", pending.APPROVAL, ApprovalAnswer(Decision.APPROVE))


def test_turn_commands_travel_between_replicas_unchanged() -> None:
    commands = [
        Cancel(),
        Approve("r_1", ApprovalAnswer(Decision.APPROVE_ALWAYS, "ok")),
        DecideLoop(LoopAnswer(LoopAction.CONTINUE, 7)),
        AnswerQuestion("q_1", "the blue one"),
    ]
    assert [decode(encode(c)) for c in commands] == commands
    with pytest.raises(InvalidArgument, match="not a turn command"):
        decode('{"reboot": true}')


# A turn on its own


async def test_a_turn_cancelled_before_its_task_runs_ends_cancelled(
    sqlite: SqliteStore, held: HeldProvider, workspace: Path
) -> None:
    record = SessionRecord(id="s_1", workspace=str(workspace))
    await sqlite.create_session(record)
    writer = EventWriter(sqlite)
    writer.start()
    log = EventLog("s_1", 0, writer)
    finished: list[str] = []
    deps = TurnDeps(
        log=log,
        store=sqlite,
        provider=held,
        tools=default_registry(),
        limits=TurnLimits(loop_cap=5, tool_output_limit=1000, system_prompt="be brief"),
        on_finished=finished.append,
    )
    turn = Turn("t_1", record, TurnInput("hi"), deps)
    turn.start()
    turn.cancel()
    assert turn.task is not None
    await turn.task
    await writer.aclose()
    assert finished == ["t_1"]
    assert turn.end_reason is TurnEndReason.CANCELLED
    payloads = [e.payload for e in await sqlite.list_events("s_1", after_seq=0, limit=10)]
    assert isinstance(payloads[0], TurnStarted)
    assert isinstance(payloads[-1], TurnEnded) and payloads[-1].reason is TurnEndReason.CANCELLED
    assert not held.streaming.is_set()  # the provider was never asked


# The manager


async def test_a_turn_runs_its_tool_calls_and_stores_every_step(
    manager: SessionManager, sqlite: SqliteStore, workspace: Path
) -> None:
    provider = scripted([call("write_file", "w", path="a.txt", content="A")], [{"text": "done"}])
    session = await new_session(manager, workspace, provider)
    turn = await manager.start_turn(session.id, TurnInput("write it"), caller=LOCAL)
    events = [e async for e in manager.follow_turn(turn)]
    finished = [e.payload for e in events if isinstance(e.payload, ToolCallFinished)]
    assert [(f.call_id, f.is_error) for f in finished] == [("w", False)]
    assert (workspace / "a.txt").read_text() == "A"
    end = events[-1].payload
    assert isinstance(end, TurnEnded) and end.reason is TurnEndReason.COMPLETED
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    roles = [m.role for m in await sqlite.list_messages(session.id)]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert turn.answer == "done"


async def test_a_second_turn_names_the_running_one_and_cancel_keeps_the_partial_answer(
    manager: SessionManager, sqlite: SqliteStore, held: HeldProvider, workspace: Path
) -> None:
    session = await new_session(manager, workspace, ProviderConfig(ProviderKind.SCRIPTED))
    turn = await manager.start_turn(session.id, TurnInput("hi"), caller=LOCAL)
    await held.streaming.wait()
    with pytest.raises(FailedPrecondition) as running:
        await manager.start_turn(session.id, TurnInput("again"), caller=LOCAL)
    assert running.value.reason == "TURN_ALREADY_RUNNING"
    assert running.value.metadata == {"session_id": session.id, "turn_id": turn.id}
    assert (await manager.get_session(session.id, caller=LOCAL)).active_turn_id == turn.id
    assert await manager.submit_command(session.id, "", Cancel(), caller=LOCAL) == turn.id
    events = [e async for e in manager.follow_turn(turn)]
    assert [e.payload for e in events if isinstance(e.payload, TextDelta)] == [TextDelta("hello")]
    end = events[-1].payload
    assert isinstance(end, TurnEnded) and end.reason is TurnEndReason.CANCELLED
    assert [(m.role, m.text) for m in await sqlite.list_messages(session.id)] == [
        (Role.USER, "hi"),
        (Role.ASSISTANT, "hello"),
    ]
    with pytest.raises(FailedPrecondition) as idle:
        await manager.submit_command(session.id, "", Cancel(), caller=LOCAL)
    assert idle.value.reason == "NO_RUNNING_TURN"


async def test_a_destructive_command_asks_at_high_risk_and_a_reader_runs_unasked(
    manager: SessionManager, workspace: Path
) -> None:
    (workspace / "build").mkdir()
    provider = scripted(
        [call("bash", "ls", command="ls")],
        [call("bash", "rm", command="rm -rf build")],
        [{"text": "done"}],
    )
    session = await new_session(manager, workspace, provider, ApprovalMode.CONFIRM)
    turn = await manager.start_turn(session.id, TurnInput("clean"), caller=LOCAL)
    stream = manager.follow_turn(turn)
    seen = await events_until(stream, ApprovalRequested)
    asked = seen[-1].payload
    assert isinstance(asked, ApprovalRequested)
    assert (asked.call_id, asked.risk) == ("rm", ApprovalRisk.HIGH)
    assert [e.payload.call_id for e in seen if isinstance(e.payload, ToolCallFinished)] == ["ls"]
    reject = Approve(asked.request_id, ApprovalAnswer(Decision.REJECT, "keep it"))
    await manager.submit_command(session.id, turn.id, reject, caller=LOCAL)
    rest = [e async for e in stream]
    rejected = next(e.payload for e in rest if isinstance(e.payload, ToolCallFinished))
    assert (rejected.output, rejected.is_error) == ("rejected by the user: keep it", True)
    assert (workspace / "build").is_dir()


async def test_callers_see_only_their_tenants_sessions(
    manager: SessionManager, workspace: Path
) -> None:
    alice, bob = Caller(tenant="alice"), Caller(tenant="bob")
    session = await new_session(manager, workspace, scripted(), caller=alice)
    assert (await manager.get_session(session.id, caller=alice)).tenant == "alice"
    with pytest.raises(NotFound) as hidden:
        await manager.get_session(session.id, caller=bob)
    assert (hidden.value.reason, hidden.value.metadata) == (
        "SESSION_NOT_FOUND",
        {"session_id": session.id},
    )
    with pytest.raises(NotFound):
        await manager.start_turn(session.id, TurnInput("hi"), caller=bob)
    page, _ = await manager.list_sessions(page_size=10, page_token="", labels={}, caller=bob)
    assert page == []


async def test_a_session_keeps_its_history_between_turns_until_the_store_has_more(
    manager: SessionManager, sqlite: SqliteStore, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await new_session(manager, workspace, scripted(*[[{"text": "ok"}]] * 3))
    reads: list[str] = []
    list_messages = sqlite.list_messages

    async def counted(session_id: str, **kwargs: Any) -> list[Message]:
        reads.append(session_id)
        return await list_messages(session_id, **kwargs)

    monkeypatch.setattr(sqlite, "list_messages", counted)
    for text in ("one", "two"):
        turn = await manager.start_turn(session.id, TurnInput(text), caller=LOCAL)
        assert turn.task is not None
        await turn.task
    assert reads == [session.id]  # the second turn started from the kept history
    # Something else (another replica, a recovery) adds a message: the next turn reads again.
    await sqlite.append_message(session.id, Message(Role.USER, "t_other", text="from elsewhere"))
    turn = await manager.start_turn(session.id, TurnInput("three"), caller=LOCAL)
    assert turn.task is not None
    await turn.task
    assert reads == [session.id, session.id]
    history = [m.text for m in await list_messages(session.id)]
    assert history == ["one", "ok", "two", "ok", "from elsewhere", "three", "ok"]
