"""Inputs past every limit get a precise status naming the limit, never UNKNOWN, and nothing
stored changes."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.fakes.llm_server import FakeLLM, Stream, text_chunks, tool_call_chunks
from tests.helpers import create_session, finished_calls, run_turn, scripted

Stub = pb_grpc.SessionServiceStub


async def status(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value.code(), e.value.details() or ""


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def script(body: str) -> spb.ProviderConfig:
    return spb.ProviderConfig(kind=spb.PROVIDER_KIND_SCRIPTED, script_json=body)


async def test_each_bad_input_has_its_code_and_message(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)

    def new(**fields: Any) -> Awaitable[Any]:
        return stub.CreateSession(
            pb.CreateSessionRequest(session=spb.Session(workspace=str(workspace), **fields))
        )

    many_rules = [spb.ApprovalRule(tool_name="bash", command_prefix=f"x{i}") for i in range(300)]
    huge_rule = [spb.ApprovalRule(tool_name="bash", command_prefix="x" * (1024 * 1024))]
    deep_token = base64.urlsafe_b64encode(deep(5000).encode()).decode()
    image = spb.Image(mime_type="image/png", data=b"\x89PNG" + b"\0" * (200 * 1024))
    table: list[tuple[Awaitable[Any], grpc.StatusCode, str]] = [
        (
            stub.ListSessions(pb.ListSessionsRequest(labels={f"k{i}": "v" for i in range(1000)})),
            grpc.StatusCode.INVALID_ARGUMENT,
            "a filter has at most 64",
        ),
        (
            new(provider=script('{"rounds": [[{"text": ' + deep(5000) + "}]]}")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "nested deeper than 64 levels",
        ),
        (
            new(provider=script(json.dumps({"rounds": [[{"repeat": 10**9, "text": "x"}]]}))),
            grpc.StatusCode.INVALID_ARGUMENT,
            '"repeat" must be between 0 and 100000',
        ),
        (new(approval_rules=many_rules), grpc.StatusCode.INVALID_ARGUMENT, "at most 256"),
        (
            new(approval_rules=huge_rule),
            grpc.StatusCode.INVALID_ARGUMENT,
            "longer than 1024 characters",
        ),
        (
            stub.ListSessions(pb.ListSessionsRequest(page_token=deep_token)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token is not a token this service issued",
        ),
        (
            stub.ListModels(pb.ListModelsRequest(provider=script(deep(5000)))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "nested deeper",
        ),
    ]
    for call, code, fragment in table:
        got = await status(call)
        assert got[0] == code and fragment in got[1], (code, fragment, got)

    # Images count in --max-input-bytes; more than 8 are refused.
    for images, code, fragment in (
        ([image] * 6, grpc.StatusCode.RESOURCE_EXHAUSTED, "over the input_bytes limit"),
        ([image] * 9, grpc.StatusCode.INVALID_ARGUMENT, "more than 8 images"),
    ):
        start = epb.StartTurn(session_id=session.id, text="look", images=images)
        call = stub.RunTurn(iter([pb.RunTurnRequest(command=epb.EngineCommand(start_turn=start))]))
        got = await status(call.read())
        assert got[0] == code and fragment in got[1], got

    # Nothing of that was stored: the one session is as it was.
    listed = await stub.ListSessions(pb.ListSessionsRequest())
    assert [s.id for s in listed.sessions] == [session.id]
    assert (
        await stub.GetSession(pb.GetSessionRequest(session_id=session.id))
    ).session.last_seq == 0


async def test_tool_arguments_nested_too_deep_are_a_tool_error(
    stub: Stub, workspace: Path, fake_llm: FakeLLM
) -> None:
    arguments = '{"command": ' + deep(100_000) + "}"
    fake_llm.replies.extend(
        [Stream(tool_call_chunks([("c1", "bash", arguments)], split=50_000)),
         Stream(text_chunks("ok"))]
    )  # fmt: skip
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url
    )
    session = await create_session(stub, workspace, provider, mode=spb.APPROVAL_MODE_CONFIRM)
    events = await run_turn(stub, session.id, "go")
    result = finished_calls(events)["c1"]
    assert result.is_error and "nested deeper than 64 levels" in result.output
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED


async def test_a_scripted_round_with_many_repeats_is_accepted_up_to_the_limit(
    stub: Stub, workspace: Path
) -> None:
    session = await create_session(stub, workspace, scripted([{"repeat": 100_000, "text": ""}]))
    events = await run_turn(stub, session.id, "go")
    assert events[-1].turn_ended.reason == epb.TURN_END_REASON_COMPLETED
