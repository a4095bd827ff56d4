"""Structured output (StartTurn.output_schema_json) through a real server: the provider's own
way of asking for JSON (checked on the wire), validation, one repair round, and failure."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.fakes.llm_server import Failure, FakeLLM, Raw, Stream, anthropic_stream, text_chunks
from tests.helpers import Turn, create_session, messages, scripted

Stub = pb_grpc.SessionServiceStub
SCHEMA = {
    "type": "object",
    "properties": {
        "files": {"type": "array", "items": {"type": "string"}},
        "ok": {"type": "boolean"},
    },
    "required": ["files", "ok"],
    "additionalProperties": False,
}


async def run(stub: Stub, session_id: str, schema: object = SCHEMA) -> list[epb.EngineEvent]:
    turn = Turn(stub)
    text = schema if isinstance(schema, str) else json.dumps(schema)
    start = epb.StartTurn(session_id=session_id, text="list the files", output_schema_json=text)
    await turn.send(pb.RunTurnRequest(command=epb.EngineCommand(start_turn=start)))
    await turn.call.done_writing()
    return await turn.finish()


async def test_a_valid_answer_arrives_as_output_json(stub: Stub, workspace: Path) -> None:
    answer = 'Here it is:\n```json\n{"files": ["a.py", "b.py"], "ok": true}\n```'
    session = await create_session(stub, workspace, scripted([{"text": answer}]))
    ended = (await run(stub, session.id))[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_COMPLETED
    assert ended.output_json == '{"files":["a.py","b.py"],"ok":true}'


async def test_an_invalid_answer_is_asked_for_again_once(stub: Stub, workspace: Path) -> None:
    provider = scripted(
        [{"text": '{"files": "a.py"}'}], [{"text": '{"files": ["a.py"], "ok": false}'}]
    )
    session = await create_session(stub, workspace, provider)
    ended = (await run(stub, session.id))[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_COMPLETED
    assert json.loads(ended.output_json) == {"files": ["a.py"], "ok": False}
    history = await messages(stub, session.id)
    repair = history[2]
    assert repair.role == spb.MESSAGE_ROLE_USER
    assert "at files: 'a.py' is not of type 'array'" in repair.text


async def test_two_invalid_answers_fail_the_turn(stub: Stub, workspace: Path) -> None:
    provider = scripted([{"text": "no JSON here"}], [{"text": '{"ok": true}'}])
    session = await create_session(stub, workspace, provider)
    ended = (await run(stub, session.id))[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_FAILED
    assert ended.error_code == "output_invalid" and not ended.output_json
    assert "'files' is a required property" in ended.error_message


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ("{not json", "is not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"type": "nonsense"}', "is not a valid JSON Schema"),
    ],
)
async def test_a_bad_schema_is_invalid_argument(
    stub: Stub, workspace: Path, schema: str, why: str
) -> None:
    session = await create_session(stub, workspace, scripted([{"text": "{}"}]))
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await run(stub, session.id, schema)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert why in (bad.value.details() or "")


async def test_openai_is_asked_with_response_format_json_schema(
    stub: Stub, workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    fake_llm.replies.extend(
        [
            # A server without structured outputs says so: asked again without, the
            # instruction in the system prompt and validation still hold.
            Failure(400, {"error": {"message": "Unsupported parameter: 'response_format'"}}),
            Stream(text_chunks('{"files": [], "ok": true}')),
            Stream(text_chunks('{"files": ["x"], "ok": true}')),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=fake_llm.base_url,
        api_key_env="FAKE_OPENAI_KEY",
    )  # fmt: skip
    session = await create_session(stub, workspace, provider)
    ended = (await run(stub, session.id))[-1].turn_ended
    assert json.loads(ended.output_json) == {"files": [], "ok": True}
    first, second = (r.body for r in fake_llm.requests[:2])
    assert first["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA},
    }
    assert "response_format" not in second
    system = second["messages"][0]
    assert system["role"] == "system" and json.dumps(SCHEMA) in system["content"]
    # The next request asks with response_format again (the retry without is per request).
    ended = (await run(stub, session.id))[-1].turn_ended
    assert json.loads(ended.output_json) == {"files": ["x"], "ok": True}


async def test_anthropic_answers_through_a_final_tool_forced_on_the_repair_round(
    stub: Stub, workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant")
    answer = json.dumps({"files": ["notes.md"], "ok": True})
    fake_llm.replies.extend(
        [
            Raw(anthropic_stream({"text": ["I found notes.md."]})),  # prose: not valid
            Raw(
                anthropic_stream(
                    {"tool_use": ("toolu_1", "respond", [answer[:9], answer[9:]])},
                    stop_reason="tool_use",
                )
            ),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_ANTHROPIC, model="claude-fake", base_url=fake_llm.root_url,
        api_key_env="FAKE_ANTHROPIC_KEY",
    )  # fmt: skip
    session = await create_session(stub, workspace, provider)
    events = await run(stub, session.id)
    ended = events[-1].turn_ended
    assert ended.reason == epb.TURN_END_REASON_COMPLETED
    assert json.loads(ended.output_json) == {"files": ["notes.md"], "ok": True}
    first, second = (r.body for r in fake_llm.requests)
    respond = [t for t in first["tools"] if t["name"] == "respond"]
    assert respond and respond[0]["input_schema"] == SCHEMA
    assert "tool_choice" not in first
    assert second["tool_choice"] == {"type": "tool", "name": "respond"}
    # The answer tool is not a tool call of the turn: nothing ran, the history is valid.
    assert not [e for e in events if e.HasField("tool_call_started")]
    history = await messages(stub, session.id)
    assert history[-1].role == spb.MESSAGE_ROLE_ASSISTANT and not history[-1].tool_calls
