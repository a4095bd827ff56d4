"""A history that outgrows the context window is summarised by the session's provider."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from kodad.engine.compaction import SUMMARY_PROMPT
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.fakes.llm_server import FakeLLM, Stream, text_chunks
from tests.helpers import create_session, kind, messages, run_turn, scripted, text_of


async def test_old_turns_are_summarised_and_recent_ones_kept(
    stub: pb_grpc.SessionServiceStub, workspace: Path, fake_llm: FakeLLM
) -> None:
    long_answer = "x" * 4000  # about 1000 tokens each
    fake_llm.replies.extend(
        [
            Stream(text_chunks(long_answer)),
            Stream(text_chunks(long_answer)),
            Stream(text_chunks(long_answer)),
            Stream(text_chunks("The user asked three questions; each got a long answer.")),
            Stream(text_chunks("fourth")),
        ]
    )
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        model="m",
        base_url=fake_llm.base_url,
        context_window_tokens=4000,
    )
    session = await create_session(stub, workspace, provider)
    for text in ("one", "two", "three"):
        events = await run_turn(stub, session.id, text)
        assert "notice" not in [kind(e) for e in events]

    events = await run_turn(stub, session.id, "four")

    notices = [e.notice for e in events if kind(e) == "notice"]
    assert len(notices) == 1 and notices[0].level == epb.NOTICE_LEVEL_INFO
    assert "messages 1-4 are summarised" in notices[0].text
    assert text_of(events) == "fourth"

    summarising = fake_llm.requests[3].body
    assert summarising["messages"][0] == {"role": "system", "content": SUMMARY_PROMPT}
    assert "tools" not in summarising
    transcript = summarising["messages"][1]["content"]
    assert "[User]\none" in transcript and "[User]\ntwo" in transcript and "three" not in transcript

    continued = fake_llm.requests[4].body["messages"]
    assert [m["role"] for m in continued] == ["system", "user", "user", "assistant", "user"]
    assert continued[1]["content"].startswith(
        "Summary of the conversation up to message 4:\nThe user asked"
    )
    assert [continued[2]["content"], continued[4]["content"]] == ["three", "four"]

    history = await messages(stub, session.id)
    assert [m.index for m in history] == list(range(1, 10))  # nothing was deleted
    summary = history[7]
    assert (summary.role, summary.summarized_through) == (spb.MESSAGE_ROLE_SUMMARY, 4)


async def test_compaction_with_the_scripted_provider_keeps_rounds_in_step(
    stub: pb_grpc.SessionServiceStub, workspace: Path
) -> None:
    from tests.helpers import scripted

    provider = scripted(
        [{"text": "a" * 4000}], [{"text": "b" * 4000}], [{"text": "c" * 4000}], [{"text": "d"}]
    )
    provider.context_window_tokens = 4000
    session = await create_session(stub, workspace, provider)
    for text in ("one", "two", "three"):
        await run_turn(stub, session.id, text)
    events = await run_turn(stub, session.id, "four")
    assert text_of(events) == "d"  # round 4, although the call sent fewer messages
    history = await messages(stub, session.id)
    assert history[7].role == spb.MESSAGE_ROLE_SUMMARY
    assert "words of earlier conversation" in history[7].text


async def test_compact_session_on_demand(stub: pb_grpc.SessionServiceStub, workspace: Path) -> None:
    session = await create_session(
        stub,
        workspace,
        scripted([{"text": "first answer"}], [{"text": "second answer"}]),
    )
    request = pb.CompactSessionRequest(session_id=session.id)
    await run_turn(stub, session.id, "first question")
    nothing = await stub.CompactSession(request)  # one turn: nothing before it to summarise
    assert nothing.summarized_through == 0
    await run_turn(stub, session.id, "second question")
    done = await stub.CompactSession(request)
    assert done.summarized_through == 2  # the first question and its answer
    history = (await stub.ListMessages(pb.ListMessagesRequest(session_id=session.id))).messages
    summary = history[-1]
    assert summary.role == spb.MESSAGE_ROLE_SUMMARY and summary.turn_id == done.turn_id
    # The scripted provider summarises by counting words; a real one writes a summary.
    assert summary.text.startswith("Summary of the conversation up to message 2:")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.CompactSession(pb.CompactSessionRequest(session_id="s_missing"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
