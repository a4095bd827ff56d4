"""OpenTelemetry spans for a turn, its provider calls and its tool calls."""

from __future__ import annotations

from pathlib import Path

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import scripted, start, tool_call

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


async def test_a_turn_is_traced(server: Server, workspace: Path) -> None:
    EXPORTER.clear()
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
        session.provider.CopyFrom(
            scripted([tool_call("write_file", "w", path="a.txt", content="x")], [{"text": "ok"}])
        )
        created = (await stub.CreateSession(pb.CreateSessionRequest(session=session))).session
        events = [r.event async for r in stub.RunTurn(iter([start(created.id, "go")]))]
    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    turn, tool = spans["kodad.turn"], spans["kodad.tool"]
    rounds = [s for s in EXPORTER.get_finished_spans() if s.name == "kodad.provider_round"]
    assert turn.attributes is not None and tool.attributes is not None
    assert turn.attributes["kodad.session_id"] == created.id
    assert turn.attributes["kodad.turn_id"] == events[0].turn_id
    assert turn.attributes["kodad.reason"] == "completed"
    assert tool.attributes["kodad.tool"] == "write_file"
    assert len(rounds) == 2
    # Provider rounds and the tool call are children of the turn's span.
    for child in (tool, *rounds):
        assert child.parent is not None and child.parent.span_id == turn.context.span_id
