"""SessionService: translate, delegate to the SessionManager, map errors. No logic."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from kodad import __version__
from kodad.api import convert
from kodad.api.errors import status_code
from kodad.engine.errors import InvalidArgument, KodaError
from kodad.engine.manager import SessionManager, TurnCommand
from kodad.engine.model import DisconnectPolicy, TurnEnded
from kodad.engine.turn import Turn
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.providers import SERVED_KINDS

Req = TypeVar("Req")
Resp = TypeVar("Resp")

CAPABILITIES = (
    "run_turn",
    "approvals",
    "list_file_changes",
    "thinking",
    "context_compaction",
    "watch_session",
    "submit_command",
    "cancel_turn",
    "fork_session",
    "loop_cap",
    "tool_output_streaming",
)


def _unary(
    method: Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> Resp:
        try:
            return await method(self, request, context)
        except KodaError as e:
            await context.abort(status_code(e), str(e))
            raise  # unreachable: abort raises

    return wrapper


def _streaming(
    method: Callable[[Any, Req, grpc.aio.ServicerContext[Any, Resp]], Awaitable[None]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext[Any, Resp]], Awaitable[None]]:
    """For streaming methods that send with `context.write` (no generator per message)."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext[Any, Resp]
    ) -> None:
        try:
            await method(self, request, context)
        except KodaError as e:
            await context.abort(status_code(e), str(e))

    return wrapper


class SessionServicer(pb_grpc.SessionServiceServicer):
    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    @_unary
    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetServerInfoResponse:
        return pb.GetServerInfoResponse(
            version=__version__,
            capabilities=CAPABILITIES,
            provider_kinds=[convert.PROVIDER_KIND_TO_PB[k] for k in SERVED_KINDS],
            tool_names=self._manager.tools.names,
            default_loop_cap=self._manager.settings.default_loop_cap,
            default_provider=convert.provider(self._manager.settings.default_provider),
        )

    @_unary
    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateSessionResponse:
        if not request.HasField("session"):
            raise InvalidArgument("session is required")
        record = await self._manager.create_session(
            convert.session_spec(request.session),
            default_provider=not request.session.HasField("provider"),
        )
        return pb.CreateSessionResponse(session=convert.session(record))

    @_unary
    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetSessionResponse:
        record = await self._manager.get_session(request.session_id)
        return pb.GetSessionResponse(session=convert.session(record))

    @_unary
    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListSessionsResponse:
        records, token = await self._manager.list_sessions(
            page_size=request.page_size, page_token=request.page_token, labels=dict(request.labels)
        )
        return pb.ListSessionsResponse(
            sessions=[convert.session(r) for r in records], next_page_token=token
        )

    @_unary
    async def UpdateSession(
        self, request: pb.UpdateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UpdateSessionResponse:
        if not request.session.id:
            raise InvalidArgument("session.id is required")
        record = await self._manager.update_session(
            convert.session_spec(request.session), list(request.update_mask.paths)
        )
        return pb.UpdateSessionResponse(session=convert.session(record))

    @_unary
    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteSessionResponse:
        await self._manager.delete_session(request.session_id)
        return pb.DeleteSessionResponse()

    @_unary
    async def ForkSession(
        self, request: pb.ForkSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ForkSessionResponse:
        record = await self._manager.fork_session(request.session_id, request.title)
        return pb.ForkSessionResponse(session=convert.session(record))

    @_unary
    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListMessagesResponse:
        messages, token = await self._manager.list_messages(
            request.session_id, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListMessagesResponse(
            messages=[convert.message(m) for m in messages], next_page_token=token
        )

    @_unary
    async def ListFileChanges(
        self, request: pb.ListFileChangesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListFileChangesResponse:
        changes, token = await self._manager.list_file_changes(
            request.session_id,
            turn_id=request.turn_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListFileChangesResponse(
            changes=[convert.file_change(c) for c in changes], next_page_token=token
        )

    @_unary
    async def SubmitCommand(
        self, request: pb.SubmitCommandRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SubmitCommandResponse:
        command = convert.turn_command(request.command)
        turn = await self._manager.running_turn(request.session_id, request.turn_id)
        self._manager.command(turn, command)
        return pb.SubmitCommandResponse(turn_id=turn.id)

    @_unary
    async def CancelTurn(
        self, request: pb.CancelTurnRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CancelTurnResponse:
        turn = await self._manager.running_turn(request.session_id, request.turn_id)
        turn.cancel()
        return pb.CancelTurnResponse(turn_id=turn.id)

    @_streaming
    async def WatchSession(  # type: ignore[override]
        self, request: pb.WatchSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        async for event in self._manager.watch(request.session_id, request.after_seq):
            await context.write(pb.WatchSessionResponse(event=convert.event(event)))

    @_streaming
    async def RunTurn(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[pb.RunTurnRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.command.WhichOneof("command") != "start_turn":
            raise InvalidArgument("the first command of RunTurn must be start_turn")
        start = first.command.start_turn
        turn_input = convert.turn_input(start)
        turn = await self._manager.start_turn(start.session_id, turn_input)
        reader = asyncio.create_task(self._read_commands(request_iterator, turn))
        ended = False
        try:
            async for event in self._manager.follow_turn(turn):
                await context.write(pb.RunTurnResponse(event=convert.event(event)))
                ended = isinstance(event.payload, TurnEnded)
        finally:
            reader.cancel()
            if not ended and turn_input.on_disconnect is DisconnectPolicy.CANCEL:
                turn.cancel()

    async def _read_commands(self, requests: AsyncIterator[pb.RunTurnRequest], turn: Turn) -> None:
        """Delivers the client's later commands to the turn."""
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            async for request in requests:
                try:
                    command: TurnCommand | KodaError = convert.turn_command(request.command)
                except KodaError as e:
                    command = e
                self._manager.stream_command(turn, command)
