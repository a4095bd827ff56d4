"""Small helpers for tests that speak the raw koda.v1 contract."""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc


def scripted(*rounds: list[dict[str, Any]], **agents: list[Any]) -> spb.ProviderConfig:
    """The scripted provider playing `rounds`, and for each sub-agent profile named in
    `agents` its own rounds."""
    body: dict[str, Any] = {"rounds": list(rounds)}
    if agents:
        body["agents"] = {name: {"rounds": r} for name, r in agents.items()}
    return spb.ProviderConfig(kind=spb.PROVIDER_KIND_SCRIPTED, script_json=json.dumps(body))


def tool_call(name: str, call_id: str = "", **arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "arguments": arguments}
    if call_id:
        call["id"] = call_id
    return {"tool_call": call}


async def create_session(
    stub: pb_grpc.SessionServiceStub,
    workspace: Path,
    provider: spb.ProviderConfig | None = None,
    mode: int = spb.APPROVAL_MODE_AUTO,
    **fields: Any,
) -> spb.Session:
    session = spb.Session(workspace=str(workspace), approval_mode=mode, **fields)
    if provider is not None:
        session.provider.CopyFrom(provider)
    response = await stub.CreateSession(pb.CreateSessionRequest(session=session))
    return response.session


def start(
    session_id: str, text: str, on_disconnect: int = epb.DISCONNECT_POLICY_CANCEL
) -> pb.RunTurnRequest:
    return pb.RunTurnRequest(
        command=epb.EngineCommand(
            start_turn=epb.StartTurn(session_id=session_id, text=text, on_disconnect=on_disconnect)
        )
    )


def cancel() -> pb.RunTurnRequest:
    return pb.RunTurnRequest(command=epb.EngineCommand(cancel=epb.Cancel()))


def kind(event: epb.EngineEvent) -> str:
    return event.WhichOneof("payload") or ""


def kinds(events: list[epb.EngineEvent]) -> list[str]:
    """The payload kinds, without the context_usage report that precedes every round."""
    return [k for k in map(kind, events) if k != "context_usage"]


def streamed_kinds(events: list[epb.EngineEvent]) -> list[str]:
    """kinds(), with each run of text or thinking deltas as one: how a provider's stream
    splits into deltas depends on its network reads (all that one read brings is merged)."""
    merged: list[str] = []
    for k in kinds(events):
        if not (merged and k == merged[-1] and k in ("text_delta", "thinking_delta")):
            merged.append(k)
    return merged


class Turn:
    """A RunTurn call driven step by step: write commands, read events."""

    def __init__(self, stub: pb_grpc.SessionServiceStub) -> None:
        self.call = stub.RunTurn()
        self.events: list[epb.EngineEvent] = []

    async def send(self, request: pb.RunTurnRequest) -> None:
        await self.call.write(request)

    async def next(self) -> epb.EngineEvent:
        response = await self.call.read()
        assert response is not grpc.aio.EOF, "stream ended"
        self.events.append(response.event)
        return response.event

    async def until(self, payload: str) -> epb.EngineEvent:
        """Reads events until one of kind `payload` arrives, and returns it."""
        while True:
            event = await self.next()
            if kind(event) == payload:
                return event

    async def finish(self) -> list[epb.EngineEvent]:
        """Reads to turn_ended, checks the stream then closes OK, returns all events."""
        await self.until("turn_ended")
        assert await self.call.read() is grpc.aio.EOF
        assert await self.call.code() == grpc.StatusCode.OK
        return self.events


async def run_turn(
    stub: pb_grpc.SessionServiceStub, session_id: str, text: str
) -> list[epb.EngineEvent]:
    turn = Turn(stub)
    await turn.send(start(session_id, text))
    await turn.call.done_writing()
    return await turn.finish()


def text_of(events: list[epb.EngineEvent]) -> str:
    return "".join(e.text_delta.text for e in events if kind(e) == "text_delta")


async def messages(stub: pb_grpc.SessionServiceStub, session_id: str) -> list[spb.Message]:
    out: list[spb.Message] = []
    token = ""
    while True:
        page = await stub.ListMessages(
            pb.ListMessagesRequest(session_id=session_id, page_token=token)
        )
        out += page.messages
        token = page.next_page_token
        if not token:
            return out


async def stored_events(stub: pb_grpc.SessionServiceStub, session_id: str) -> list[epb.EngineEvent]:
    """Every event of the session's log, read back through WatchSession."""
    session = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    events: list[epb.EngineEvent] = []
    if not session.last_seq:
        return events
    watch = stub.WatchSession(pb.WatchSessionRequest(session_id=session_id))
    async for response in watch:
        events.append(response.event)
        if response.event.seq >= session.last_seq:
            break
    watch.cancel()
    return events


def assert_history_valid(history: list[spb.Message]) -> None:
    """Every tool call of an assistant message is answered by a tool message, in order."""
    assert [m.index for m in history] == list(range(1, len(history) + 1))
    open_calls: list[str] = []
    for m in history:
        if m.role == spb.MESSAGE_ROLE_TOOL:
            assert open_calls and m.tool_result.call_id == open_calls.pop(0), m
        else:
            assert not open_calls, f"unanswered tool calls {open_calls} before {m}"
            open_calls = [c.call_id for c in m.tool_calls]
    assert not open_calls, f"unanswered tool calls {open_calls}"


def exits(pid: int, timeout_s: float = 10.0) -> bool:
    """Waits for process `pid` to exit (pidfd readiness: an event, not polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout_s)
        return bool(readable)
    finally:
        os.close(fd)


def decide(request_id: str, decision: int, feedback: str = "") -> pb.RunTurnRequest:
    return pb.RunTurnRequest(
        command=epb.EngineCommand(
            approval_decision=epb.ApprovalDecision(
                request_id=request_id, decision=decision, feedback=feedback
            )
        )
    )


def finished_calls(events: list[epb.EngineEvent]) -> dict[str, epb.ToolCallFinished]:
    return {
        e.tool_call_finished.call_id: e.tool_call_finished
        for e in events
        if kind(e) == "tool_call_finished"
    }


@contextlib.contextmanager
def flipping(target: Path, victim: Path) -> Iterator[None]:
    """`target` flipping between a regular file and a symlink to `victim`, as fast as a
    thread can rename (each flip atomic), for as long as the block runs."""
    stop = threading.Event()
    link, plain = target.with_name(".flip-link"), target.with_name(".flip-plain")

    def flip() -> None:
        while not stop.is_set():
            link.unlink(missing_ok=True)
            link.symlink_to(victim)
            os.replace(link, target)
            plain.write_text("inside")
            os.replace(plain, target)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        yield
    finally:
        stop.set()
        flipper.join()


def require_sandbox() -> None:
    """Fails (with KODAD_REQUIRE_SANDBOX, as `make test` sets it) or skips a test that needs
    bubblewrap on a host without it."""
    import pytest

    from kodad.tools.sandbox import Sandbox

    found = Sandbox.detect()
    if not found.available:
        if os.environ.get("KODAD_REQUIRE_SANDBOX"):
            pytest.fail(f"no sandbox on this host: {found.info.reason}")
        pytest.skip("bubblewrap is not installed")
