"""The Python client of kodad: a thin async layer over the generated koda.v1 stubs.

    async with Client("127.0.0.1:50051") as kodad:
        session = await kodad.create_session("/path/to/repo", approval_mode=ApprovalMode.AUTO)
        async for event in kodad.run_turn(session.id, "add a README"):
            if event.HasField("text_delta"):
                print(event.text_delta.text, end="")

Approvals and loop-cap questions are answered by callbacks (default: reject / stop); RPC
failures raise KodadError carrying the gRPC status code.
"""

from __future__ import annotations

import json
import os
import warnings
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.client.errors import call as _call
from kodad.client.turn import (
    _EOF,
    ApprovalHandler,
    LoopHandler,
    QuestionHandler,
    Turn,
)
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc

ApprovalMode = spb.ApprovalMode
Decision = epb.Decision
LoopAction = epb.LoopAction
EngineEvent = epb.EngineEvent
Session = spb.Session
Message = spb.Message
ProviderConfig = spb.ProviderConfig
ProviderKind = spb.ProviderKind
TurnEndReason = epb.TurnEndReason
WhenBusy = epb.WhenBusy


def default_address() -> str:
    """Where clients connect by default: KODAD_CONNECT, else the address `kodad serve`
    listens on (KODAD_LISTEN), else 127.0.0.1:50051."""
    return os.environ.get("KODAD_CONNECT") or os.environ.get("KODAD_LISTEN") or "127.0.0.1:50051"


class _Child(Protocol):
    """A process the Client owns (a sidecar), stopped when it closes."""

    async def stop(self, grace_s: float = 10.0) -> None: ...


class _Bearer(grpc.AuthMetadataPlugin):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {self._token}"),), None)


# The koda.v1 contract version this client was built for (GetServerInfo.contract_version).
CONTRACT_VERSION = "0.2.0"


class Client:
    """Connects to a kodad service. Use `async with Client(target) as kodad:`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        token: str | None = None,
        tls: grpc.ChannelCredentials | None = None,
    ) -> None:
        if tls is not None:
            credentials = tls
            if token:
                credentials = grpc.composite_channel_credentials(
                    tls, grpc.metadata_call_credentials(_Bearer(token))
                )
            self._channel = grpc.aio.secure_channel(target, credentials)
            self._metadata: tuple[tuple[str, str], ...] = ()
        else:
            self._channel = grpc.aio.insecure_channel(target)
            self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.stub: pb_grpc.SessionServiceAsyncStub = pb_grpc.SessionServiceStub(self._channel)
        self._sidecar: _Child | None = None
        # The last turn run_turn made per session, for the next one to end first.
        self._turns: weakref.WeakValueDictionary[str, Turn] = weakref.WeakValueDictionary()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def own(self, child: _Child) -> None:
        """Makes the Client stop `child` when it closes (spawn_sidecar's process)."""
        self._sidecar = child

    async def close(self) -> None:
        await self._channel.close(None)
        if self._sidecar is not None:
            await self._sidecar.stop()

    async def server_info(self) -> pb.GetServerInfoResponse:
        """What the service serves; warns (UserWarning) when its contract's major.minor
        version is not this client's CONTRACT_VERSION."""
        info = await _call(
            self.stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=self._metadata)
        )
        served = info.contract_version or info.version
        if served.split(".")[:2] != CONTRACT_VERSION.split(".")[:2]:
            warnings.warn(
                f"kodad at this address serves contract {served}; this client is for "
                f"{CONTRACT_VERSION}",
                stacklevel=2,
            )
        return info

    async def list_models(
        self, provider: spb.ProviderConfig | None = None, *, session_id: str = ""
    ) -> list[spb.Model]:
        """The models `provider` serves (else the session's, else the server's default)."""
        request = pb.ListModelsRequest(session_id=session_id)
        if provider is not None:
            request.provider.CopyFrom(provider)
        response = await _call(self.stub.ListModels(request, metadata=self._metadata))
        return list(response.models)

    async def create_session(
        self,
        workspace: str,
        *,
        title: str = "",
        provider: spb.ProviderConfig | None = None,
        approval_mode: spb.ApprovalMode.ValueType = spb.APPROVAL_MODE_CONFIRM,
        labels: dict[str, str] | None = None,
        loop_cap: int = 0,
        system_prompt: str = "",
        approval_timeout_s: float = 0,
        sandbox: spb.Sandbox | None = None,
        profile: str = "",
        mcp_servers: Iterable[spb.McpServer] = (),
    ) -> spb.Session:
        """Creates a session; `sandbox` sets what its commands may touch (default: the
        workspace writable by approved commands, no network), `profile` the agent profile
        it runs as, `mcp_servers` the MCP servers whose tools it gets."""
        session = spb.Session(
            workspace=workspace,
            title=title,
            approval_mode=approval_mode,
            labels=labels or {},
            loop_cap=loop_cap,
            system_prompt=system_prompt,
            profile=profile,
            mcp_servers=list(mcp_servers),
        )
        if provider is not None:
            session.provider.CopyFrom(provider)
        if sandbox is not None:
            session.sandbox.CopyFrom(sandbox)
        if approval_timeout_s:
            timeout = Duration()
            timeout.FromNanoseconds(int(approval_timeout_s * 1e9))
            session.approval_timeout.CopyFrom(timeout)
        response = await _call(
            self.stub.CreateSession(
                pb.CreateSessionRequest(session=session), metadata=self._metadata
            )
        )
        return response.session

    async def get_session(self, session_id: str) -> spb.Session:
        request = pb.GetSessionRequest(session_id=session_id)
        return (await _call(self.stub.GetSession(request, metadata=self._metadata))).session

    async def list_sessions(
        self, *, labels: dict[str, str] | None = None, page_size: int = 100
    ) -> AsyncIterator[spb.Session]:
        """Every session, newest first (pages fetched as needed)."""
        token = ""
        while True:
            sessions, token = await self.sessions_page(token, labels=labels, page_size=page_size)
            for session in sessions:
                yield session
            if not token:
                return

    async def sessions_page(
        self, page_token: str = "", *, labels: dict[str, str] | None = None, page_size: int = 100
    ) -> tuple[list[spb.Session], str]:
        """One page of sessions, newest first, and the token of the next ("" after the last)."""
        request = pb.ListSessionsRequest(
            page_size=page_size, page_token=page_token, labels=labels or {}
        )
        page = await _call(self.stub.ListSessions(request, metadata=self._metadata))
        return list(page.sessions), page.next_page_token

    async def compact(self, session_id: str) -> pb.CompactSessionResponse:
        """Summarises the session's older history into one message (CompactSession)."""
        request = pb.CompactSessionRequest(session_id=session_id)
        return await _call(self.stub.CompactSession(request, metadata=self._metadata))

    async def update_session(self, session: spb.Session, fields: Iterable[str]) -> spb.Session:
        """Changes the named fields of `session` (which carries its id)."""
        request = pb.UpdateSessionRequest(
            session=session, update_mask=FieldMask(paths=list(fields))
        )
        return (await _call(self.stub.UpdateSession(request, metadata=self._metadata))).session

    async def delete_session(self, session_id: str) -> None:
        request = pb.DeleteSessionRequest(session_id=session_id)
        await _call(self.stub.DeleteSession(request, metadata=self._metadata))

    async def fork_session(
        self, session_id: str, title: str = "", *, at_turn_id: str = "", workspace_copy: str = ""
    ) -> spb.Session:
        """A copy of the session (with `at_turn_id`, its history up to that turn; with
        `workspace_copy`, a new directory holding the workspace as that turn left it)."""
        request = pb.ForkSessionRequest(
            session_id=session_id, title=title, at_turn_id=at_turn_id,
            workspace_copy=workspace_copy,
        )  # fmt: skip
        return (await _call(self.stub.ForkSession(request, metadata=self._metadata))).session

    async def rewind(
        self, session_id: str, turn_id: str, *, files: bool = True, history: bool = True,
        force: bool = False,
    ) -> epb.SessionRewound:  # fmt: skip
        """Returns the workspace and/or history to just before `turn_id` (undo: `unrewind`)."""
        request = pb.RewindSessionRequest(
            session_id=session_id, to_turn_id=turn_id, files=files, history=history, force=force
        )
        return (await _call(self.stub.RewindSession(request, metadata=self._metadata))).rewound

    async def unrewind(self, session_id: str, *, force: bool = False) -> epb.SessionRewound:
        request = pb.UnrewindSessionRequest(session_id=session_id, force=force)
        return (await _call(self.stub.UnrewindSession(request, metadata=self._metadata))).rewound

    async def turn_diff(self, session_id: str, turn_id: str) -> pb.GetTurnDiffResponse:
        request = pb.GetTurnDiffRequest(session_id=session_id, turn_id=turn_id)
        return await _call(self.stub.GetTurnDiff(request, metadata=self._metadata))

    async def messages(self, session_id: str) -> list[spb.Message]:
        """The whole history, oldest first."""
        out: list[spb.Message] = []
        token = ""
        while True:
            request = pb.ListMessagesRequest(
                session_id=session_id, page_size=1000, page_token=token
            )
            page = await _call(self.stub.ListMessages(request, metadata=self._metadata))
            out += page.messages
            token = page.next_page_token
            if not token:
                return out

    async def file_changes(self, session_id: str, turn_id: str = "") -> list[epb.FileChange]:
        out: list[epb.FileChange] = []
        token = ""
        while True:
            request = pb.ListFileChangesRequest(
                session_id=session_id, turn_id=turn_id, page_size=1000, page_token=token
            )
            page = await _call(self.stub.ListFileChanges(request, metadata=self._metadata))
            out += page.changes
            token = page.next_page_token
            if not token:
                return out

    def run_turn(
        self,
        session_id: str,
        text: str,
        *,
        images: Iterable[spb.Image] = (),
        on_approval: ApprovalHandler | None = None,
        on_loop_cap: LoopHandler | None = None,
        on_question: QuestionHandler | None = None,
        continue_on_disconnect: bool = False,
        when_busy: epb.WhenBusy.ValueType = epb.WHEN_BUSY_REJECT,
        output_schema: Mapping[str, Any] | None = None,
        max_total_tokens: int = 0,
        max_cost: float = 0.0,
    ) -> Turn:
        """Starts a turn when iterated. Without handlers approvals are rejected, the loop
        cap stops the turn and ask_user questions get NO_ANSWER; a handler returning None
        leaves the question to another client. `when_busy` says what to do if the session
        runs a turn (queue, interrupt, steer); with `output_schema` (a JSON Schema) the
        answer arrives as JSON (`output_of(turn_ended)`); the budgets stop the turn."""
        policy = (
            epb.DISCONNECT_POLICY_CONTINUE
            if continue_on_disconnect
            else epb.DISCONNECT_POLICY_CANCEL
        )
        start = epb.StartTurn(
            session_id=session_id, text=text, images=list(images), on_disconnect=policy,
            when_busy=when_busy, max_total_tokens=max_total_tokens, max_cost=max_cost,
            output_schema_json=json.dumps(output_schema) if output_schema is not None else "",
        )  # fmt: skip
        turn = Turn(
            self.stub, start, on_approval, on_loop_cap, self._metadata, on_question,
            self._turns.get(session_id),
        )  # fmt: skip
        self._turns[session_id] = turn
        return turn

    async def watch(self, session_id: str, after_seq: int = 0) -> AsyncIterator[epb.EngineEvent]:
        """Stored events after `after_seq`, then live ones, until the caller stops."""
        call = self.stub.WatchSession(
            pb.WatchSessionRequest(session_id=session_id, after_seq=after_seq),
            metadata=self._metadata,
        )
        try:
            while True:
                response = await _call(call.read())
                if response is _EOF:
                    return
                assert isinstance(response, pb.WatchSessionResponse)
                yield response.event
        finally:
            call.cancel()

    async def submit(self, session_id: str, command: epb.EngineCommand, turn_id: str = "") -> str:
        """Sends a command to the session's running turn (from any client); its turn id."""
        request = pb.SubmitCommandRequest(session_id=session_id, command=command, turn_id=turn_id)
        return (await _call(self.stub.SubmitCommand(request, metadata=self._metadata))).turn_id

    async def cancel_turn(self, session_id: str, *, clear_queue: bool = False) -> str:
        """Cancels the running turn (with `clear_queue`, the queued ones too)."""
        request = pb.CancelTurnRequest(session_id=session_id, clear_queue=clear_queue)
        return (await _call(self.stub.CancelTurn(request, metadata=self._metadata))).turn_id

    async def remove_queued_turn(self, session_id: str, turn_id: str) -> None:
        """Takes a queued turn off the session's queue (NOT_FOUND once it has started)."""
        request = pb.RemoveQueuedTurnRequest(session_id=session_id, turn_id=turn_id)
        await _call(self.stub.RemoveQueuedTurn(request, metadata=self._metadata))
