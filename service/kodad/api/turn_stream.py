"""A RunTurn stream: the turn it started (or the running turn it steered, or the queued turn
it became), followed to its end, and the client's commands delivered to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from kodad.api import convert_events
from kodad.domain.access import Caller
from kodad.domain.errors import KodaError
from kodad.domain.events import QueuedTurnRemoved, TurnEnded
from kodad.domain.model import DisconnectPolicy
from kodad.engine.control import Cancel, TurnCommand
from kodad.engine.manager import SessionManager
from kodad.engine.queue import Queued
from kodad.engine.turn import Turn
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_service_pb2 as pb

Requests = AsyncIterator[pb.RunTurnRequest]
Context = grpc.aio.ServicerContext[Any, Any]


async def run(
    manager: SessionManager, start: epb.StartTurn, requests: Requests, context: Context,
    caller: Caller,
) -> None:  # fmt: skip
    """Starts the turn `start` asks for and streams it; a broken stream cancels it unless
    it asked to continue."""
    turn_input = convert_events.turn_input(start)
    started = await manager.run_turn(start.session_id, turn_input, caller=caller)
    if isinstance(started, Queued):
        await _follow_queued(manager, requests, context, start, started, caller)
        return
    turn = started
    reader = asyncio.create_task(_read_commands(manager, requests, turn))
    ended = False
    try:
        async for event in manager.follow_turn(turn):
            await context.write(pb.RunTurnResponse(event=convert_events.event(event)))
            ended = isinstance(event.payload, TurnEnded)
    finally:
        reader.cancel()
        if not ended and turn_input.on_disconnect is DisconnectPolicy.CANCEL:
            turn.cancel()


async def _follow_queued(
    manager: SessionManager, requests: Requests, context: Context, start: epb.StartTurn,
    queued: Queued, caller: Caller,
) -> None:  # fmt: skip
    """The stream of an input that was queued: its turn_queued, then its turn's events
    once it starts (or its queued_turn_removed). Commands go to that turn."""
    session_id, turn_id = start.session_id, queued.turn_id
    reader = asyncio.create_task(_read_queued(manager, requests, session_id, turn_id, caller))
    ended = False
    try:
        async for event in manager.follow_queued(session_id, queued):
            await context.write(pb.RunTurnResponse(event=convert_events.event(event)))
            ended = isinstance(event.payload, TurnEnded | QueuedTurnRemoved)
    finally:
        reader.cancel()
        if not ended and start.on_disconnect != epb.DISCONNECT_POLICY_CONTINUE:
            manager.drop_queued(session_id, turn_id, caller=caller)


async def _read_queued(
    manager: SessionManager, requests: Requests, session_id: str, turn_id: str, caller: Caller
) -> None:
    """Delivers a queued stream's commands to its turn (cancel: off the queue first)."""
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for request in requests:
            try:
                command = convert_events.turn_command(request.command)
                if isinstance(command, Cancel):
                    manager.drop_queued(session_id, turn_id, caller=caller)
                else:
                    await manager.submit_command(session_id, turn_id, command, caller=caller)
            except KodaError:
                pass  # not for this turn (yet, or any more): nothing to apply it to


async def _read_commands(manager: SessionManager, requests: Requests, turn: Turn) -> None:
    """Delivers the client's later commands to the turn."""
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for request in requests:
            try:
                command: TurnCommand | KodaError = convert_events.turn_command(request.command)
            except KodaError as e:
                command = e
            await manager.stream_command(turn, command)
