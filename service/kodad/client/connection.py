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

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.client.errors import call as _call
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

T = TypeVar("T")
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]
# A handler returns the answer, or None to leave the question to another client.
ApprovalHandler = Callable[[epb.ApprovalRequested], "Awaitable[Answer | None] | Answer | None"]
LoopHandler = Callable[[epb.LoopCapReached], "Awaitable[LoopAnswer | None] | LoopAnswer | None"]
QuestionHandler = Callable[[epb.UserQuestion], "Awaitable[str | None] | str | None"]
# What an ask_user question gets when the turn has no question handler.
NO_ANSWER = (
    "Nobody can answer questions here: decide yourself, go on, and say in your answer what "
    "you assumed."
)


class _Child(Protocol):
    """A process the Client owns (a sidecar), stopped when it closes."""

    async def stop(self, grace_s: float = 10.0) -> None: ...


@dataclass(frozen=True)
class Answer:
    """The answer to an approval request."""

    decision: epb.Decision.ValueType = epb.DECISION_REJECT
    feedback: str = ""


@dataclass(frozen=True)
class LoopAnswer:
    """The answer to a loop-cap question."""

    action: epb.LoopAction.ValueType = epb.LOOP_ACTION_STOP
    extra_iterations: int = 0


async def _resolve(value: T | Awaitable[T]) -> T:
    return await value if inspect.isawaitable(value) else value


class _Bearer(grpc.AuthMetadataPlugin):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {self._token}"),), None)


class Turn:
    """A running turn: iterate it for events; `cancel()` stops the turn (not just the
    stream). Approval and loop questions go to the handlers given to `run_turn`."""

    def __init__(
        self,
        stub: pb_grpc.SessionServiceAsyncStub,
        start: epb.StartTurn,
        on_approval: ApprovalHandler | None,
        on_loop_cap: LoopHandler | None,
        metadata: tuple[tuple[str, str], ...] = (),
        on_question: QuestionHandler | None = None,
    ) -> None:
        # The typing stubs predate the write/read style of bidi calls (no request iterator).
        self._call: grpc.aio.StreamStreamCall[pb.RunTurnRequest, pb.RunTurnResponse] = stub.RunTurn(
            metadata=metadata
        )  # type: ignore[call-arg]
        self._start = start
        self._on_approval = on_approval
        self._on_loop_cap = on_loop_cap
        self._on_question = on_question
        self.turn_id = ""

    async def _send(self, command: epb.EngineCommand) -> None:
        await self._call.write(pb.RunTurnRequest(command=command))

    async def cancel(self) -> None:
        """Asks the service to cancel the turn; the events end with turn_ended CANCELLED."""
        await self._send(epb.EngineCommand(cancel=epb.Cancel()))

    async def approve(self, request_id: str, answer: Answer) -> None:
        await self._send(
            epb.EngineCommand(
                approval_decision=epb.ApprovalDecision(
                    request_id=request_id, decision=answer.decision, feedback=answer.feedback
                )
            )
        )

    async def decide_loop(self, answer: LoopAnswer) -> None:
        await self._send(
            epb.EngineCommand(
                loop_decision=epb.LoopDecision(
                    action=answer.action, extra_iterations=answer.extra_iterations
                )
            )
        )

    async def steer(self, text: str, images: Iterable[spb.Image] = ()) -> None:
        """Adds input the model sees at its next request (`user_input_added`); too late
        for the turn, it is queued as the session's next turn instead."""
        await self._send(epb.EngineCommand(steer=epb.Steer(text=text, images=list(images))))

    async def answer(self, request_id: str, text: str) -> None:
        """Answers an ask_user question (user_question) of the turn."""
        answer = epb.UserAnswer(request_id=request_id, text=text)
        await self._send(epb.EngineCommand(user_answer=answer))

    async def __aiter__(self) -> AsyncIterator[epb.EngineEvent]:
        await _call(self._send(epb.EngineCommand(start_turn=self._start)))
        while True:
            response = await _call(self._call.read())
            if response is _EOF:
                return
            assert isinstance(response, pb.RunTurnResponse)
            event = response.event
            self.turn_id = self.turn_id or event.turn_id
            yield event
            if event.HasField("approval_requested"):
                request = event.approval_requested
                handler = self._on_approval
                answer = await _resolve(handler(request)) if handler else Answer()
                if answer is not None:
                    await self.approve(request.request_id, answer)
            elif event.HasField("loop_cap_reached"):
                loop_handler = self._on_loop_cap
                question = event.loop_cap_reached
                loop = await _resolve(loop_handler(question)) if loop_handler else LoopAnswer()
                if loop is not None:
                    await self.decide_loop(loop)
            elif event.HasField("user_question"):
                asked = event.user_question
                handler_q = self._on_question
                text = await _resolve(handler_q(asked)) if handler_q else NO_ANSWER
                if text is not None:
                    await self.answer(asked.request_id, text)
            elif event.HasField("turn_ended"):
                return


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
        return await _call(
            self.stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=self._metadata)
        )

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

    async def fork_session(self, session_id: str, title: str = "") -> spb.Session:
        request = pb.ForkSessionRequest(session_id=session_id, title=title)
        return (await _call(self.stub.ForkSession(request, metadata=self._metadata))).session

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
    ) -> Turn:
        """Starts a turn when iterated. Without handlers approvals are rejected, the loop
        cap stops the turn and ask_user questions get NO_ANSWER; a handler returning None
        leaves the question to another client."""
        policy = (
            epb.DISCONNECT_POLICY_CONTINUE
            if continue_on_disconnect
            else epb.DISCONNECT_POLICY_CANCEL
        )
        start = epb.StartTurn(
            session_id=session_id, text=text, images=list(images), on_disconnect=policy
        )
        return Turn(self.stub, start, on_approval, on_loop_cap, self._metadata, on_question)

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

    async def cancel_turn(self, session_id: str) -> str:
        request = pb.CancelTurnRequest(session_id=session_id)
        return (await _call(self.stub.CancelTurn(request, metadata=self._metadata))).turn_id
