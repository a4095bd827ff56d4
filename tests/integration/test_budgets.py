"""Token and cost budgets through a real server: a turn's own, its session's, and the price
table costs come from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.client import KodadError
from kodad.config import ServerConfig
from kodad.domain import errors
from kodad.engine.budget import Price, PriceTable
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import Turn, assert_history_valid, create_session, kind, messages, tool_call

Stub = pb_grpc.SessionServiceStub
PRICED = "priced-model"


def spend(input_tokens: int, output_tokens: int, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    """A round that reports this usage, after `steps`."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return [*steps, {"usage": usage}]


def provider(*rounds: list[dict[str, Any]]) -> spb.ProviderConfig:
    script = json.dumps({"rounds": list(rounds)})
    return spb.ProviderConfig(kind=spb.PROVIDER_KIND_SCRIPTED, model=PRICED, script_json=script)


@pytest.fixture
async def priced(server_config: ServerConfig) -> AsyncIterator[Stub]:
    """A server whose price table has PRICED at 1000 (input) and 2000 (output) a million."""
    table = PriceTable("USD", {PRICED: Price(input=1000.0, output=2000.0)})
    config = dataclasses.replace(
        server_config, engine=dataclasses.replace(server_config.engine, prices=table)
    )
    async with Server(config) as server, grpc.aio.insecure_channel(server.address) as ch:
        yield pb_grpc.SessionServiceStub(ch)


async def run(stub: Stub, session_id: str, **limits: Any) -> list[epb.EngineEvent]:
    turn = Turn(stub)
    start = epb.StartTurn(session_id=session_id, text="work", **limits)
    await turn.send(pb.RunTurnRequest(command=epb.EngineCommand(start_turn=start)))
    await turn.call.done_writing()
    return await turn.finish()


async def test_a_turn_stops_at_its_token_budget_before_the_next_request(
    stub: Stub, workspace: Path
) -> None:
    script = provider(
        spend(600, 500, tool_call("list_dir", "l", path=".")),
        spend(10, 10, {"text": "never asked for"}),
    )
    session = await create_session(stub, workspace, script)
    events = await run(stub, session.id, max_total_tokens=1000)
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_BUDGET_EXHAUSTED
    assert ended.error_message == "the turn's token budget (1000) is spent: 1100 used"
    assert (ended.usage.input_tokens, ended.usage.output_tokens) == (600, 500)
    assert "tool_call_finished" in [kind(e) for e in events]  # the work so far is kept
    history = await messages(stub, session.id)
    assert_history_valid(history)
    assert [m.role for m in history][-1] == spb.MESSAGE_ROLE_TOOL  # no second request


async def test_a_session_budget_ends_a_turn_then_refuses_the_next(
    stub: Stub, workspace: Path
) -> None:
    script = provider(
        spend(800, 400, {"text": "first"}),  # the last request may pass the budget
        spend(300, 100, tool_call("list_dir", path=".")),
        spend(1, 1, {"text": "not reached"}),
    )
    session = await create_session(stub, workspace, script, token_budget=1500)
    first = await run(stub, session.id)
    assert first[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
    second = await run(stub, session.id)
    ended = second[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_BUDGET_EXHAUSTED
    assert ended.error_message == "the session's token budget (1500) is spent: 1600 tokens used"
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert got.usage.input_tokens + got.usage.output_tokens == 1600 and got.token_budget == 1500
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await run(stub, session.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "token budget (1500) is spent" in (refused.value.details() or "")
    # Raising the budget lets the session go on.
    got.token_budget = 5000
    mask = FieldMask(paths=["token_budget"])
    await stub.UpdateSession(pb.UpdateSessionRequest(session=got, update_mask=mask))
    third = await run(stub, session.id)
    assert third[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_costs_come_from_the_price_table_and_cost_budgets_hold(
    priced: Stub, workspace: Path
) -> None:
    stub = priced
    script = provider(
        spend(600, 500, tool_call("list_dir", path=".")),  # 0.6 + 1.0 = 1.6
        spend(1, 1, {"text": "not reached"}),
    )
    session = await create_session(stub, workspace, script)
    events = await run(stub, session.id, max_cost=1.5)
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_BUDGET_EXHAUSTED
    assert ended.usage.cost == pytest.approx(1.6)
    assert ended.error_message == "the turn's cost budget (1.5) is spent: 1.6 used"
    reported = [e.usage for e in events if kind(e) == "usage"]
    assert [u.cost for u in reported] == [pytest.approx(1.6)]
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=session.id))).session
    assert got.usage.cost == pytest.approx(1.6)
    # A session cost budget that is already spent refuses the next turn, with its reason.
    got.cost_budget = 1.0
    mask = FieldMask(paths=["cost_budget"])
    await stub.UpdateSession(pb.UpdateSessionRequest(session=got, update_mask=mask))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await run(stub, session.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = KodadError.of(refused.value)
    assert (info.reason, info.metadata["budget"]) == (errors.BUDGET_EXHAUSTED, "cost")


async def test_a_cost_budget_needs_a_price(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace, provider(spend(1, 1, {"text": "x"})))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await run(stub, session.id, max_cost=2.0)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a price for the model 'priced-model'" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await run(stub, session.id, max_total_tokens=-5)
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
