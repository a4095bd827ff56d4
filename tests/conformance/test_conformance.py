"""The shared conformance scenarios (tests/conformance/*.json, see README.md there), run by
the Python client (kodad.client) against a live `kodad serve`."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from kodad.client import Answer, Client, KodadError, LoopAnswer, Turn, output_of
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from tests.kodad_process import KodadProcess

HERE = Path(__file__).parent
SCENARIOS = sorted(HERE.glob("*.json"))


@pytest.fixture(scope="module")
def service() -> Iterator[KodadProcess]:
    with tempfile.TemporaryDirectory() as data:
        process = KodadProcess(Path(data))
        yield process
        process.close()


class Runner:
    def __init__(self, client: Client, scenario: dict[str, Any], workspace: Path) -> None:
        self.client = client
        self.scenario = scenario
        self.workspace = workspace
        self.events: list[epb.EngineEvent] = []
        self.session: spb.Session | None = None
        self.stream: AsyncIterator[epb.EngineEvent] | None = None
        self.turn: Turn | None = None
        self.turn_id = ""
        self.approval_answer: Answer | None = None
        self.loop_answer: LoopAnswer | None = None
        self.question_answer: str | None = None

    async def setup(self) -> None:
        spec = self.scenario["session"]
        for path, content in spec.get("files", {}).items():
            (self.workspace / path).parent.mkdir(parents=True, exist_ok=True)
            (self.workspace / path).write_text(content)
        provider = None
        if "script" in spec:
            provider = spb.ProviderConfig(
                kind=spb.PROVIDER_KIND_SCRIPTED, script_json=json.dumps(spec["script"])
            )
        self.session = await self.client.create_session(
            str(self.workspace),
            provider=provider,
            approval_mode=spb.ApprovalMode.Value(spec["approval_mode"]),
            loop_cap=spec.get("loop_cap", 0),
        )

    def _approval(self, request: epb.ApprovalRequested) -> Answer | None:
        answer, self.approval_answer = self.approval_answer, None
        return answer

    def _loop(self, question: epb.LoopCapReached) -> LoopAnswer | None:
        answer, self.loop_answer = self.loop_answer, None
        return answer

    def _question(self, question: epb.UserQuestion) -> str | None:
        answer, self.question_answer = self.question_answer, None
        return answer

    async def read(self) -> epb.EngineEvent:
        assert self.stream is not None
        event = await anext(self.stream)
        self.events.append(event)
        self.turn_id = self.turn_id or event.turn_id
        return event

    def last(self, kind: str) -> epb.EngineEvent:
        return next(e for e in reversed(self.events) if e.WhichOneof("payload") == kind)

    async def step(self, step: dict[str, Any]) -> bool:
        """Runs one step; False ends the scenario (an expected error happened)."""
        assert self.session is not None
        action = step["do"]
        if action == "start":
            turn = self.client.run_turn(
                step.get("session_id", self.session.id), step["text"],
                on_approval=self._approval, on_loop_cap=self._loop, on_question=self._question,
                output_schema=step.get("output_schema"),
            )  # fmt: skip
            self.turn = turn
            self.stream = aiter(turn)
            if "expect_code" in step:
                with pytest.raises(KodadError) as err:
                    await self.read()
                assert err.value.code == grpc.StatusCode[step["expect_code"]]
                return False
        elif action == "read_until":
            while (await self.read()).WhichOneof("payload") != step["kind"]:
                pass
        elif action == "decide":
            request = self.last("approval_requested").approval_requested
            answer = Answer(epb.Decision.Value(step["decision"]), step.get("feedback", ""))
            if step.get("via") == "submit":
                command = epb.EngineCommand(
                    approval_decision=epb.ApprovalDecision(
                        request_id=request.request_id,
                        decision=answer.decision,
                        feedback=answer.feedback,
                    )
                )
                await self.submit(command, step.get("expect_code"))
            else:
                self.approval_answer = answer
        elif action == "loop":
            answer_loop = LoopAnswer(
                epb.LoopAction.Value(step["action"]), step.get("extra_iterations", 0)
            )
            if step.get("via") == "submit":
                command = epb.EngineCommand(
                    loop_decision=epb.LoopDecision(
                        action=answer_loop.action, extra_iterations=answer_loop.extra_iterations
                    )
                )
                await self.submit(command, step.get("expect_code"))
            else:
                self.loop_answer = answer_loop
        elif action == "answer":
            asked = self.last("user_question").user_question
            if step.get("via") == "submit":
                answer_text = epb.UserAnswer(request_id=asked.request_id, text=step["text"])
                command = epb.EngineCommand(user_answer=answer_text)
                await self.submit(command, step.get("expect_code"))
            else:
                self.question_answer = step["text"]
        elif action == "run":
            kept = []
            async for event in self.client.run_turn(self.session.id, step["text"]):
                kept.append(event)
                if event.WhichOneof("payload") == step.get("leave_after"):
                    break  # leaving the loop: the turn is cancelled
            else:
                self.events += kept
        elif action == "cancel":
            if step.get("via") == "cancel_turn":
                await self.client.cancel_turn(self.session.id)
            else:
                await self.submit(epb.EngineCommand(cancel=epb.Cancel()), None)
        elif action == "steer":
            if step.get("via") == "submit":
                await self.submit(epb.EngineCommand(steer=epb.Steer(text=step["text"])), None)
            else:
                assert self.turn is not None
                await self.turn.steer(step["text"])
        elif action == "start_second":
            second = aiter(self.client.run_turn(self.session.id, step["text"]))
            with pytest.raises(KodadError) as err:
                await anext(second)
            assert err.value.code == grpc.StatusCode[step["expect_code"]]
            if step.get("message_contains_turn_id"):
                assert self.turn_id in err.value.message
        elif action == "finish":
            while (await self.read()).WhichOneof("payload") != "turn_ended":
                pass
            assert self.stream is not None
            with pytest.raises(StopAsyncIteration):
                await anext(self.stream)  # the stream closes OK after turn_ended
        elif action == "watch":
            expected = [e for e in self.events if e.seq > step["after_seq"]]
            watched = []
            async for event in self.client.watch(self.session.id, step["after_seq"]):
                watched.append(event)
                if len(watched) == len(expected):
                    break
            assert watched == expected
        else:
            raise AssertionError(f"unknown step {action}")
        return True

    async def submit(self, command: epb.EngineCommand, expect_code: str | None) -> None:
        assert self.session is not None
        if expect_code is None:
            await self.client.submit(self.session.id, command)
            return
        with pytest.raises(KodadError) as err:
            await self.client.submit(self.session.id, command)
        assert err.value.code == grpc.StatusCode[expect_code]

    async def check(self, expect: dict[str, Any]) -> None:
        assert self.session is not None
        kinds = [e.WhichOneof("payload") for e in self.events]
        seqs = [e.seq for e in self.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        if "kinds" in expect:
            assert kinds == expect["kinds"]
        if "kinds_include" in expect:
            rest = iter(kinds)
            assert all(any(k == want for k in rest) for want in expect["kinds_include"]), kinds
        if "subagent" in expect:
            tagged = [e for e in self.events if e.subagent_session_id]
            assert {e.subagent_session_id for e in tagged} - {self.session.id, ""}
            assert len({e.subagent_session_id for e in tagged}) == 1
            assert {e.parent_call_id for e in tagged} == {expect["subagent"]["parent_call_id"]}
            assert [e.WhichOneof("payload") for e in tagged] == expect["subagent"]["kinds"]
        for kind, number in expect.get("count", {}).items():
            assert kinds.count(kind) == number, (kind, kinds)
        if "text" in expect:
            assert (
                "".join(e.text_delta.text for e in self.events if e.HasField("text_delta"))
                == expect["text"]
            )
        if "turn_ended" in expect:
            ended = self.last("turn_ended").turn_ended
            want = expect["turn_ended"]
            assert epb.TurnEndReason.Name(ended.reason) == want["reason"]
            assert ended.error_code == want.get("error_code", ended.error_code)
            assert ended.usage.input_tokens == want.get("input_tokens", ended.usage.input_tokens)
            assert ended.usage.output_tokens == want.get("output_tokens", ended.usage.output_tokens)
        for path, content in expect.get("files", {}).items():
            assert (self.workspace / path).read_text() == content
        finished = {
            e.tool_call_finished.call_id: e.tool_call_finished
            for e in self.events
            if e.HasField("tool_call_finished")
        }
        for call_id, want in expect.get("tool_results", {}).items():
            got = finished[call_id]
            assert got.is_error == want.get("is_error", got.is_error)
            assert got.output == want.get("output", got.output)
            assert got.truncated == want.get("truncated", got.truncated)
            assert len(got.output) == want.get("output_length", len(got.output))
        for call_id, length in expect.get("streamed_output", {}).items():
            chunks = [
                e.tool_call_output.chunk
                for e in self.events
                if e.HasField("tool_call_output") and e.tool_call_output.call_id == call_id
            ]
            assert sum(len(c) for c in chunks) == length
        if "approval" in expect:
            asked = json_format.MessageToDict(
                self.last("approval_requested").approval_requested, preserving_proto_field_name=True
            )
            assert {k: asked.get(k) for k in expect["approval"]} == expect["approval"]
        if "approval_rules" in expect:
            session = await self.client.get_session(self.session.id)
            rules = [
                json_format.MessageToDict(r, preserving_proto_field_name=True)
                for r in session.approval_rules
            ]
            assert rules == expect["approval_rules"]
        if "output" in expect:
            assert output_of(self.last("turn_ended").turn_ended) == expect["output"]
        if "history_roles" in expect:
            messages = await self.client.messages(self.session.id)
            assert [spb.MessageRole.Name(m.role) for m in messages] == expect["history_roles"]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(service: KodadProcess, path: Path, tmp_path: Path) -> None:
    scenario = json.loads(path.read_text())
    async with Client(service.address) as client:
        runner = Runner(client, scenario, tmp_path)
        await runner.setup()
        for step in scenario["steps"]:
            if not await runner.step(step):
                return
        await runner.check(scenario["expect"])
