"""The editor's side of ACP for the `kodad acp` tests: the SDK's ClientSideConnection
with a client that records updates and answers permission requests from a list."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from acp import PROTOCOL_VERSION, spawn_agent_process
from acp.schema import (
    AcceptElicitationResponse,
    AgentMessageChunk,
    AllowedOutcome,
    ClientCapabilities,
    DeclineElicitationResponse,
    DeniedOutcome,
    PermissionOption,
    RequestPermissionResponse,
    ToolCallUpdate,
)

from kodad.api import convert
from kodad.config import ServerConfig
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import scripted, stored_events

KODAD_ACP = ("-m", "kodad", "acp")
Answer = str | Callable[[ToolCallUpdate, list[PermissionOption]], Awaitable[str | None]]


class Editor:
    """The editor's side: records every update and answers permission requests from a list
    (an option id, or a coroutine function returning one; None answers "cancelled")."""

    def __init__(self, answers: list[Answer] | None = None) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.asked: list[tuple[ToolCallUpdate, list[PermissionOption]]] = []
        self.answers = list(answers or [])
        self.conn: Any = None
        self.hello: Any = None  # the initialize response
        self.forms: list[tuple[str, Any]] = []
        self.form_answers: list[dict[str, Any] | None] = []

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:  # fmt: skip
        self.asked.append((tool_call, options))
        answer = self.answers.pop(0)
        chosen = answer if isinstance(answer, str) else await answer(tool_call, options)
        if chosen is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=chosen)
        )

    async def create_elicitation(self, message: str, mode: Any, **kwargs: Any) -> Any:
        self.forms.append((message, mode))
        answer = self.form_answers.pop(0)
        if answer is None:
            return DeclineElicitationResponse(action="decline")
        return AcceptElicitationResponse(action="accept", content=answer)

    def of(self, session_id: str, *types: type) -> list[Any]:
        return [
            u for s, u in self.updates if s == session_id and (not types or isinstance(u, types))
        ]

    def text(self, session_id: str) -> str:
        return "".join(u.content.text for u in self.of(session_id, AgentMessageChunk))


@asynccontextmanager
async def acp_agent(
    editor: Editor,
    *args: str,
    env: dict[str, str] | None = None,
    capabilities: ClientCapabilities | None = None,
) -> AsyncIterator[Any]:
    """`kodad acp ARGS` with `editor` on the other end, initialised."""
    async with spawn_agent_process(
        editor, sys.executable, *KODAD_ACP, *args, env={**os.environ, **(env or {})},
        use_unstable_protocol=True,
        # Its log goes to the test's stderr (an unread pipe could fill up and stall it).
        transport_kwargs={"stderr": None},
    ) as (conn, _process):  # fmt: skip
        editor.hello = await conn.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=capabilities or ClientCapabilities(),
        )
        yield conn


@asynccontextmanager
async def service(config: ServerConfig, *rounds: list[dict[str, Any]], **agents: Any
                  ) -> AsyncIterator[Server]:  # fmt: skip
    """A kodad service whose sessions made without a provider (as ACP makes them) play
    `rounds` (with none, they echo the input)."""
    script = scripted(*rounds, **agents) if rounds else spb.ProviderConfig()
    default = convert.provider_config(script)
    engine = dataclasses.replace(config.engine, default_provider=default)
    async with Server(dataclasses.replace(config, engine=engine)) as server:
        yield server


async def grpc_session(server: Server, session_id: str) -> spb.Session:
    async with grpc.aio.insecure_channel(server.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        return (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session


async def stored_events_of(server: Server, session_id: str) -> list[epb.EngineEvent]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        return await stored_events(pb_grpc.SessionServiceStub(ch), session_id)
