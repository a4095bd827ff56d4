"""SessionService: translate, delegate to the SessionManager, map errors. No logic."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from kodad import __version__, metrics
from kodad.api import convert, convert_events, turn_stream
from kodad.api.auth import Authenticator
from kodad.api.errors import abort, status_code
from kodad.domain.access import Caller
from kodad.domain.errors import InvalidArgument, KodaError, Unauthenticated
from kodad.engine import validation
from kodad.engine.manager import SessionManager
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
    "agent_profiles",
    "ask_user",
    "todos",
    "context_usage",
    "compact_session",
    "list_models",
    "rate_limits",
    "sandbox",
)


def _rpc(
    method: Callable[[Any, Req, grpc.aio.ServicerContext[Any, Any], Caller], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]:
    """Authenticates the call, runs it as its caller, maps errors and counts the outcome.
    Streaming methods send with `context.write` (no generator per message) and return None."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(
        self: SessionServicer, request: Req, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Resp:
        code = grpc.StatusCode.OK
        try:
            caller = self._auth.caller(context)
            if not caller.token_sha256:
                return await method(self, request, context, caller)
            # A call made with a token ends when a reload of the tokens file revokes it.
            call = asyncio.ensure_future(method(self, request, context, caller))
            revoked = asyncio.ensure_future(self._auth.wait_revoked(caller))
            try:
                await asyncio.wait({call, revoked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                revoked.cancel()
                if not call.done():
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await call
            if call.cancelled() and revoked.done() and not revoked.cancelled():
                raise Unauthenticated("the bearer token was revoked")
            return call.result()
        except KodaError as e:
            code = status_code(e)
            await abort(context, e)
            raise  # unreachable: abort raises
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            metrics.RPCS.labels(name, code.name).inc()

    return wrapper


def _profile_workspace(workspace: str, caller: Caller) -> str | None:
    """The workspace whose `.kodad/agents/` a profile request names, if it may."""
    if not workspace:
        return None
    checked = validation.workspace(workspace)
    caller.check_workspace(checked)
    return checked


class SessionServicer(pb_grpc.SessionServiceServicer):
    def __init__(self, manager: SessionManager, auth: Authenticator | None = None) -> None:
        self._manager = manager
        self._auth = auth or Authenticator()

    @_rpc
    async def GetServerInfo(
        self,
        request: pb.GetServerInfoRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.GetServerInfoResponse:
        info = self._manager.settings.sandbox.info
        return pb.GetServerInfoResponse(
            version=__version__,
            contract_version=__version__,
            capabilities=CAPABILITIES,
            provider_kinds=[convert.PROVIDER_KIND_TO_PB[k] for k in SERVED_KINDS],
            tool_names=self._manager.tools.names,
            default_loop_cap=self._manager.settings.default_loop_cap,
            default_provider=convert.provider(self._manager.settings.default_provider),
            sandbox=pb.SandboxInfo(
                available=info.available,
                mechanism=info.mechanism,
                unavailable_reason=info.reason,
                full_access_allowed=self._manager.settings.allow_full_access,
            ),
        )

    @_rpc
    async def ListModels(
        self,
        request: pb.ListModelsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ListModelsResponse:
        provider = (
            convert.provider_config(request.provider) if request.HasField("provider") else None
        )
        models = await self._manager.list_models(provider, request.session_id, caller=caller)
        return pb.ListModelsResponse(models=[convert.model(m) for m in models])

    @_rpc
    async def CreateSession(
        self,
        request: pb.CreateSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.CreateSessionResponse:
        if not request.HasField("session"):
            raise InvalidArgument("session is required")
        record = await self._manager.create_session(
            convert.session_spec(request.session),
            default_provider=not request.session.HasField("provider"),
            caller=caller,
        )
        return pb.CreateSessionResponse(session=convert.session(record))

    @_rpc
    async def GetSession(
        self,
        request: pb.GetSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.GetSessionResponse:
        record = await self._manager.get_session(request.session_id, caller=caller)
        return pb.GetSessionResponse(session=convert.session(record))

    @_rpc
    async def ListSessions(
        self,
        request: pb.ListSessionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ListSessionsResponse:
        records, token = await self._manager.list_sessions(
            page_size=request.page_size,
            page_token=request.page_token,
            labels=dict(request.labels),
            caller=caller,
        )
        return pb.ListSessionsResponse(
            sessions=[convert.session(r) for r in records], next_page_token=token
        )

    @_rpc
    async def UpdateSession(
        self,
        request: pb.UpdateSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.UpdateSessionResponse:
        if not request.session.id:
            raise InvalidArgument("session.id is required")
        record = await self._manager.update_session(
            convert.session_spec(request.session), list(request.update_mask.paths), caller=caller
        )
        return pb.UpdateSessionResponse(session=convert.session(record))

    @_rpc
    async def DeleteSession(
        self,
        request: pb.DeleteSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.DeleteSessionResponse:
        await self._manager.delete_session(request.session_id, caller=caller)
        return pb.DeleteSessionResponse()

    @_rpc
    async def ForkSession(
        self,
        request: pb.ForkSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ForkSessionResponse:
        record = await self._manager.fork_session(
            request.session_id, request.title, caller=caller, at_turn_id=request.at_turn_id,
            workspace_copy=request.workspace_copy,
        )  # fmt: skip
        return pb.ForkSessionResponse(session=convert.session(record))

    @_rpc
    async def ListMessages(
        self,
        request: pb.ListMessagesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ListMessagesResponse:
        messages, token = await self._manager.list_messages(
            request.session_id,
            page_size=request.page_size,
            page_token=request.page_token,
            caller=caller,
        )
        return pb.ListMessagesResponse(
            messages=[convert.message(m) for m in messages], next_page_token=token
        )

    @_rpc
    async def ListFileChanges(
        self,
        request: pb.ListFileChangesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ListFileChangesResponse:
        changes, token = await self._manager.list_file_changes(
            request.session_id,
            turn_id=request.turn_id,
            page_size=request.page_size,
            page_token=request.page_token,
            caller=caller,
        )
        return pb.ListFileChangesResponse(
            changes=[convert.file_change(c) for c in changes], next_page_token=token
        )

    @_rpc
    async def SubmitCommand(
        self,
        request: pb.SubmitCommandRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.SubmitCommandResponse:
        command = convert_events.turn_command(request.command)
        turn_id = await self._manager.submit_command(
            request.session_id, request.turn_id, command, caller=caller
        )
        return pb.SubmitCommandResponse(turn_id=turn_id)

    @_rpc
    async def CancelTurn(
        self,
        request: pb.CancelTurnRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.CancelTurnResponse:
        turn_id = await self._manager.cancel_turn(
            request.session_id, request.turn_id, clear_queue=request.clear_queue, caller=caller
        )
        return pb.CancelTurnResponse(turn_id=turn_id)

    @_rpc
    async def RewindSession(
        self,
        request: pb.RewindSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.RewindSessionResponse:
        rewound = await self._manager.rewind_session(
            request.session_id, to_turn_id=request.to_turn_id, to_seq=request.to_seq,
            files=request.files, history=request.history, force=request.force, caller=caller,
        )  # fmt: skip
        return pb.RewindSessionResponse(rewound=convert_events.session_rewound(rewound))

    @_rpc
    async def UnrewindSession(
        self,
        request: pb.UnrewindSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.UnrewindSessionResponse:
        rewound = await self._manager.unrewind_session(
            request.session_id, force=request.force, caller=caller
        )
        return pb.UnrewindSessionResponse(rewound=convert_events.session_rewound(rewound))

    @_rpc
    async def GetTurnDiff(
        self,
        request: pb.GetTurnDiffRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.GetTurnDiffResponse:
        diff, files = await self._manager.turn_diff(
            request.session_id, request.turn_id, caller=caller
        )
        stats = [convert_events.file_diff(f) for f in files]
        return pb.GetTurnDiffResponse(unified_diff=diff, files=stats)

    @_rpc
    async def RemoveQueuedTurn(
        self,
        request: pb.RemoveQueuedTurnRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.RemoveQueuedTurnResponse:
        await self._manager.remove_queued_turn(request.session_id, request.turn_id, caller=caller)
        return pb.RemoveQueuedTurnResponse()

    @_rpc
    async def ListAgentProfiles(
        self,
        request: pb.ListAgentProfilesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.ListAgentProfilesResponse:
        workspace = _profile_workspace(request.workspace, caller)
        profiles = self._manager.profiles.all(workspace)
        return pb.ListAgentProfilesResponse(profiles=[convert.agent_profile(p) for p in profiles])

    @_rpc
    async def GetAgentProfile(
        self,
        request: pb.GetAgentProfileRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.GetAgentProfileResponse:
        if not request.name:
            raise InvalidArgument("name is required")
        workspace = _profile_workspace(request.workspace, caller)
        profile = self._manager.profiles.get(request.name, workspace)
        return pb.GetAgentProfileResponse(profile=convert.agent_profile(profile))

    @_rpc
    async def CompactSession(
        self,
        request: pb.CompactSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> pb.CompactSessionResponse:
        turn_id, through = await self._manager.compact_session(request.session_id, caller=caller)
        return pb.CompactSessionResponse(turn_id=turn_id, summarized_through=through)

    @_rpc
    async def WatchSession(  # type: ignore[override]
        self,
        request: pb.WatchSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> None:
        # Headers at once, not with the first event: a client waiting for them (tonic's, say)
        # must not hang on a session with nothing new yet.
        await context.send_initial_metadata(())
        async for event in self._manager.watch(
            request.session_id, request.after_seq, caller=caller
        ):
            await context.write(pb.WatchSessionResponse(event=convert_events.event(event)))

    @_rpc
    async def RunTurn(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[pb.RunTurnRequest],
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> None:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.command.WhichOneof("command") != "start_turn":
            raise InvalidArgument("the first command of RunTurn must be start_turn")
        await context.send_initial_metadata(())  # e.g. a queued turn's first event may be far
        await turn_stream.run(self._manager, first.command.start_turn, request_iterator,
                              context, caller)  # fmt: skip
