"""kodad as an Agent Client Protocol agent: each ACP method as calls of the gRPC contract.

The ACP session id is the kodad session id and a tool call id is kodad's call id, so a
session made over gRPC loads in an editor and the other way round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, helpers
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    AuthEnvVar,
    AvailableCommand,
    ClientCapabilities,
    CloseSessionResponse,
    EnvVarAuthMethod,
    ForkSessionResponse,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    ResumeSessionResponse,
    SessionCapabilities,
    SessionCloseCapabilities,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionForkCapabilities,
    SessionInfo,
    SessionListCapabilities,
    SessionResumeCapabilities,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
)

from kodad import __version__
from kodad.acp.prompt import Block, turn_input
from kodad.acp.settings import Directories, McpServers, approval_mode, modes, session_servers
from kodad.acp.turns import Editor, PromptRun, request_error
from kodad.acp.updates import Translator
from kodad.client import Client, KodadError
from kodad.gen.koda.v1 import session_pb2 as spb

TOKEN_METHOD = "kodad-token"
COMMANDS = (
    AvailableCommand(name="compact", description="Summarise the older history to free context"),
    AvailableCommand(name="fork", description="Copy this session into a new one"),
)


@asynccontextmanager
async def _rpc() -> AsyncIterator[None]:
    try:
        yield
    except KodadError as e:
        raise request_error(e) from None


class KodadAgent:
    """The ACP agent. Every method is a few calls of `kodad` (a connected Client)."""

    def __init__(self, kodad: Client) -> None:
        self._kodad = kodad
        self._editor: Editor | None = None
        self._capabilities: ClientCapabilities | None = None
        self._prompts: dict[str, PromptRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_connect(self, conn: Any) -> None:
        self._editor = conn

    @property
    def editor(self) -> Editor:
        assert self._editor is not None, "on_connect was not called"
        return self._editor

    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: ClientCapabilities | None = None,
        client_info: Implementation | None = None,
        **kwargs: Any,
    ) -> InitializeResponse:
        self._capabilities = client_capabilities
        auth: list[Any] = []
        if not await self._authenticated():
            token = AuthEnvVar(name="KODAD_TOKEN", label="kodad bearer token")
            auth = [EnvVarAuthMethod(type="env_var", id=TOKEN_METHOD, name="kodad token",
                                     description="A token of the kodad service (kodad token new)",
                                     vars=[token])]  # fmt: skip
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(image=True, embedded_context=True),
                mcp_capabilities=McpCapabilities(http=True),
                session_capabilities=SessionCapabilities(
                    list=SessionListCapabilities(),
                    fork=SessionForkCapabilities(),
                    resume=SessionResumeCapabilities(),
                    close=SessionCloseCapabilities(),
                ),
            ),
            auth_methods=auth,
            agent_info=Implementation(name="kodad", title="kodad", version=__version__),
        )

    async def _authenticated(self) -> bool:
        try:
            await self._kodad.server_info()
        except KodadError as e:
            if e.code.name == "UNAUTHENTICATED":
                return False
            raise request_error(e) from None
        return True

    async def authenticate(self, method_id: str, **kwargs: Any) -> AuthenticateResponse:
        if method_id != TOKEN_METHOD:
            raise RequestError.invalid_params({"details": f"no auth method {method_id!r}"})
        if not await self._authenticated():
            raise RequestError.auth_required({"details": "KODAD_TOKEN is missing or refused"})
        return AuthenticateResponse()

    async def new_session(
        self,
        cwd: str,
        additional_directories: Directories = None,
        mcp_servers: McpServers = None,
        **kwargs: Any,
    ) -> NewSessionResponse:
        servers = session_servers(mcp_servers)
        async with _rpc():
            session = await self._kodad.create_session(cwd, mcp_servers=servers)
            self._later(self._announce(session.id))
            return NewSessionResponse(
                session_id=session.id,
                modes=modes(session),
                config_options=await self._config_options(session),
            )

    async def load_session(
        self,
        cwd: str,
        session_id: str,
        mcp_servers: McpServers = None,
        additional_directories: Directories = None,
        **kwargs: Any,
    ) -> LoadSessionResponse:
        async with _rpc():
            session = await self._open(session_id, mcp_servers)
            await self._replay(session)
            self._later(self._announce(session.id))
            return LoadSessionResponse(
                modes=modes(session), config_options=await self._config_options(session)
            )

    async def resume_session(
        self,
        session_id: str,
        cwd: str,
        additional_directories: Directories = None,
        mcp_servers: McpServers = None,
        **kwargs: Any,
    ) -> ResumeSessionResponse:
        async with _rpc():
            session = await self._open(session_id, mcp_servers)
            self._later(self._announce(session.id))
            return ResumeSessionResponse(
                modes=modes(session), config_options=await self._config_options(session)
            )

    async def fork_session(
        self,
        session_id: str,
        cwd: str,
        additional_directories: Directories = None,
        mcp_servers: McpServers = None,
        **kwargs: Any,
    ) -> ForkSessionResponse:
        async with _rpc():
            fork = await self._kodad.fork_session(session_id)
            if mcp_servers:
                fork = await self._open(fork.id, mcp_servers)
            self._later(self._announce(fork.id))
            return ForkSessionResponse(
                session_id=fork.id,
                modes=modes(fork),
                config_options=await self._config_options(fork),
            )

    async def close_session(self, session_id: str, **kwargs: Any) -> CloseSessionResponse:
        """Closes the editor's view of the session: its running prompt is cancelled; the
        session itself stays (delete it with kodad sessions delete)."""
        run = self._prompts.get(session_id)
        if run is not None:
            await run.cancel()
        return CloseSessionResponse()

    async def list_sessions(
        self, cwd: str | None = None, cursor: str | None = None, **kwargs: Any
    ) -> ListSessionsResponse:
        async with _rpc():
            sessions, token = await self._kodad.sessions_page(cursor or "", page_size=50)
        infos = [
            SessionInfo(
                session_id=s.id,
                cwd=s.workspace,
                title=s.title or None,
                updated_at=s.update_time.ToDatetime(UTC).isoformat().replace("+00:00", "Z"),
            )
            for s in sessions
            if not s.parent_session_id and (cwd is None or s.workspace == cwd)
        ]
        return ListSessionsResponse(sessions=infos, next_cursor=token or None)

    async def set_session_mode(
        self, session_id: str, mode_id: str, **kwargs: Any
    ) -> SetSessionModeResponse:
        async with _rpc():
            change = spb.Session(id=session_id, approval_mode=approval_mode(mode_id))
            await self._kodad.update_session(change, ["approval_mode"])
        await self.editor.session_update(session_id, helpers.update_current_mode(mode_id))
        return SetSessionModeResponse()

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **kwargs: Any
    ) -> SetSessionConfigOptionResponse:
        if config_id != "model" or not isinstance(value, str):
            raise RequestError.invalid_params({"details": f"no config option {config_id!r}"})
        async with _rpc():
            session = await self._kodad.get_session(session_id)
            models = [m.id for m in await self._kodad.list_models(session_id=session_id)]
            if value not in models:
                raise RequestError.invalid_params(
                    {"details": f"model {value!r} is not one of {', '.join(models)}"}
                )
            provider = spb.ProviderConfig()
            provider.CopyFrom(session.provider)
            provider.model = value
            session = await self._kodad.update_session(
                spb.Session(id=session_id, provider=provider), ["provider"]
            )
            return SetSessionConfigOptionResponse(
                config_options=await self._config_options(session)
            )

    async def prompt(self, session_id: str, prompt: list[Block], **kwargs: Any) -> PromptResponse:
        given = turn_input(prompt)
        command = given.text.strip() if not given.images else ""
        if command in ("/compact", "/fork"):
            return await self._command(session_id, command[1:])
        if session_id in self._prompts:
            raise RequestError.invalid_request(
                {"details": f"session {session_id} is already running a prompt"}
            )
        async with _rpc():
            session = await self._kodad.get_session(session_id)
        run = PromptRun(self._kodad, self.editor, session_id, session.workspace,
                        self._capabilities)  # fmt: skip
        self._prompts[session_id] = run
        try:
            return await run.run(given)
        finally:
            self._prompts.pop(session_id, None)

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        run = self._prompts.get(session_id)
        if run is not None:
            await run.cancel()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    async def _command(self, session_id: str, name: str) -> PromptResponse:
        async with _rpc():
            if name == "compact":
                done = await self._kodad.compact(session_id)
                text = (
                    f"Compacted: messages 1 to {done.summarized_through} are now one summary."
                    if done.summarized_through
                    else "Nothing to compact yet."
                )
            else:
                fork = await self._kodad.fork_session(session_id)
                text = f"Forked into session {fork.id}."
        await self.editor.session_update(session_id, helpers.update_agent_message_text(text))
        return PromptResponse(stop_reason="end_turn")

    async def _open(self, session_id: str, servers: McpServers) -> spb.Session:
        session = await self._kodad.get_session(session_id)
        if servers:
            change = spb.Session(id=session_id, mcp_servers=session_servers(servers))
            session = await self._kodad.update_session(change, ["mcp_servers"])
        return session

    async def _replay(self, session: spb.Session) -> None:
        """Sends the whole stored log as updates, as they were sent live."""
        if session.last_seq == 0:
            return
        translator = Translator(session.workspace, replay=True)
        async for event in self._kodad.watch(session.id, 0):
            for update in translator.feed(event):
                await self.editor.session_update(session.id, update)
            if event.seq >= session.last_seq:
                return

    async def _announce(self, session_id: str) -> None:
        await self.editor.session_update(session_id, helpers.update_available_commands(COMMANDS))

    def _later(self, work: Any) -> None:
        """Runs `work` once the current response is on its way."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _config_options(self, session: spb.Session) -> list[Any]:
        models = await self._kodad.list_models(session_id=session.id)
        if not models:
            return []
        current = session.provider.model or models[0].id
        choices = [SessionConfigSelectOption(value=m.id, name=m.display_name or m.id)
                   for m in models]  # fmt: skip
        if current not in {m.id for m in models}:
            choices.insert(0, SessionConfigSelectOption(value=current, name=current))
        return [
            SessionConfigOptionSelect(
                type="select",
                id="model",
                name="Model",
                category="model",
                current_value=current,
                options=choices,
            )
        ]
