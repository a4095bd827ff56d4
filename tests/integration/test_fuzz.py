"""Property-based fuzzing of every RPC against a real `kodad serve` process: at least 1,000
generated requests each, only documented status codes back, the server alive, and the
store consistent afterwards."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.store import SqliteStore
from tests.kodad_process import KodadProcess

# Each property runs for minutes, not the suite's per-test 60 s.
pytestmark = pytest.mark.timeout(900)

EXAMPLES = int(os.environ.get("KODAD_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What a request may get back: the codes the contract documents. Never INTERNAL, UNKNOWN or
# UNAVAILABLE (those would mean a bug or a dead server).
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workspace")
    (path / "a.txt").write_text("a\n")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def kodad(data_dir: Path) -> Iterator[KodadProcess]:
    process = KodadProcess(data_dir, "--max-watchers-per-session", "4")
    yield process
    assert process.process.poll() is None, "kodad died during the fuzzing"
    assert process.terminate() == 0
    check_store(data_dir)


@pytest.fixture(scope="module")
def stub(kodad: KodadProcess) -> Iterator[pb_grpc.SessionServiceStub]:
    with grpc.insecure_channel(
        kodad.address, options=[("grpc.max_receive_message_length", 128 << 20)]
    ) as channel:
        yield pb_grpc.SessionServiceStub(channel)


@pytest.fixture(scope="module")
def sessions(stub: pb_grpc.SessionServiceStub, workspace: Path) -> list[str]:
    """Real sessions for the generated requests to hit now and then."""
    ids = []
    for mode in (spb.APPROVAL_MODE_AUTO, spb.APPROVAL_MODE_CONFIRM):
        session = spb.Session(workspace=str(workspace), approval_mode=mode)
        sid = stub.CreateSession(pb.CreateSessionRequest(session=session)).session.id
        start = epb.EngineCommand(start_turn=epb.StartTurn(session_id=sid, text="hello"))
        for _ in stub.RunTurn(iter([pb.RunTurnRequest(command=start)])):
            pass  # a finished turn, so watching from a low seq has events to replay
        ids.append(sid)
    return ids


def check_store(data_dir: Path) -> None:
    """PRAGMA integrity_check, gap-free seqs, every tool call answered."""
    db = sqlite3.connect(data_dir / "kodad.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for session_id, last_seq in db.execute("SELECT id, last_seq FROM sessions").fetchall():
            seqs = [s for (s,) in db.execute(
                "SELECT seq FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
            )]  # fmt: skip
            assert seqs == list(range(1, len(seqs) + 1)), session_id
            assert last_seq == len(seqs), session_id
    finally:
        db.close()

    async def answered() -> None:
        store = SqliteStore(data_dir / "kodad.db")
        await store.open()
        try:
            for record in await store.list_sessions(limit=100_000, before_id=None, labels={}):
                messages = await store.list_messages(record.id)
                calls = {c.call_id for m in messages for c in m.tool_calls}
                results = {m.tool_result.call_id for m in messages if m.tool_result is not None}
                assert calls <= results, f"unanswered tool calls in {record.id}"
        finally:
            await store.close()

    asyncio.run(answered())


def expect_documented(call: Callable[[], Any]) -> None:
    try:
        call()
    except grpc.RpcError as e:
        assert e.code() in DOCUMENTED, f"{e.code()}: {e.details()}"


# Strategies

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "s_", "s_00000000000000000000000000", "../../etc", "\x00", "💥" * 50]
    ),
    st.just("x" * 300_000),
)
ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 2**31 - 1]))
longs = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 10**12]))
enums = st.one_of(st.integers(0, 5), st.integers(-(2**31), 2**31 - 1))  # unknown values too
labels = st.dictionaries(texts, texts, max_size=4)
images = st.lists(
    st.builds(
        spb.Image,
        mime_type=st.sampled_from(["image/png", "text/plain", ""]),
        data=st.one_of(st.binary(max_size=64), st.just(b"\xff\xfe\xc3\x28" * 10)),
    ),
    max_size=3,
)


@st.composite
def session_ids(draw: st.DrawFn, real: list[str]) -> str:
    return draw(st.one_of(texts, st.sampled_from(real)))


@st.composite
def session_messages(draw: st.DrawFn, workspace: Path) -> spb.Session:
    session = spb.Session(
        id=draw(texts),
        title=draw(texts),
        workspace=draw(st.one_of(texts, st.just(str(workspace)))),
        approval_mode=draw(enums),
        loop_cap=draw(ints),
        system_prompt=draw(texts),
        labels=draw(labels),
    )
    if draw(st.booleans()):
        session.provider.CopyFrom(
            spb.ProviderConfig(
                kind=draw(enums),
                model=draw(texts),
                base_url=draw(texts),
                api_key_env=draw(texts),
                script_json=draw(st.one_of(texts, st.just('{"rounds": [[{"text": "hi"}]]}'))),
                max_output_tokens=draw(ints),
                thinking_budget_tokens=draw(ints),
                context_window_tokens=draw(longs),
            )
        )
    if draw(st.booleans()):
        session.approval_timeout.seconds = draw(longs) % (10**10)
    for _ in range(draw(st.integers(0, 2))):
        session.approval_rules.add(tool_name=draw(texts), command_prefix=draw(texts))
    return session


@st.composite
def commands(draw: st.DrawFn, real: list[str]) -> epb.EngineCommand:
    which = draw(st.sampled_from(["start", "approval", "loop", "cancel", "steer", "empty"]))
    if which == "start":
        return epb.EngineCommand(
            start_turn=epb.StartTurn(
                session_id=draw(session_ids(real)),
                text=draw(texts),
                images=draw(images),
                on_disconnect=draw(enums),
                when_busy=draw(enums),
            )
        )
    if which == "approval":
        return epb.EngineCommand(
            approval_decision=epb.ApprovalDecision(
                request_id=draw(texts), decision=draw(enums), feedback=draw(texts)
            )
        )
    if which == "loop":
        return epb.EngineCommand(
            loop_decision=epb.LoopDecision(action=draw(enums), extra_iterations=draw(ints))
        )
    if which == "cancel":
        return epb.EngineCommand(cancel=epb.Cancel())
    if which == "steer":
        return epb.EngineCommand(steer=epb.Steer(text=draw(texts), expected_turn_id=draw(texts)))
    return epb.EngineCommand()


# One property per RPC


def test_fuzz_unary_session_rpcs(
    stub: pb_grpc.SessionServiceStub, sessions: list[str], workspace: Path
) -> None:
    created: list[str] = []

    @FUZZ
    @given(data=st.data())
    def create(data: st.DataObject) -> None:
        session = data.draw(session_messages(workspace))
        try:
            response = stub.CreateSession(pb.CreateSessionRequest(session=session))
            created.append(response.session.id)
        except grpc.RpcError as e:
            assert e.code() in DOCUMENTED, f"{e.code()}: {e.details()}"

    @FUZZ
    @given(data=st.data())
    def update(data: st.DataObject) -> None:
        session = data.draw(session_messages(workspace))
        # Not the shared sessions: an update could point them at an unreachable provider.
        session.id = data.draw(session_ids(created or ["s_none"]))
        paths = data.draw(
            st.lists(st.one_of(texts, st.sampled_from(["title", "labels", "provider",
                "approval_mode", "loop_cap", "approval_rules", "workspace"])), max_size=3)
        )  # fmt: skip
        request = pb.UpdateSessionRequest(session=session)
        request.update_mask.paths.extend(paths)
        expect_documented(lambda: stub.UpdateSession(request))

    @FUZZ
    @given(sid=session_ids(sessions), title=texts)
    def fork(sid: str, title: str) -> None:
        expect_documented(
            lambda: stub.ForkSession(pb.ForkSessionRequest(session_id=sid, title=title))
        )

    @FUZZ
    @given(sid=session_ids(sessions))
    def get(sid: str) -> None:
        expect_documented(lambda: stub.GetSession(pb.GetSessionRequest(session_id=sid)))

    @FUZZ
    @given(size=ints, token=texts, wanted=labels)
    def list_sessions(size: int, token: str, wanted: dict[str, str]) -> None:
        request = pb.ListSessionsRequest(page_size=size, page_token=token, labels=wanted)
        expect_documented(lambda: stub.ListSessions(request))

    @FUZZ
    @given(sid=session_ids(sessions), size=ints, token=texts)
    def list_messages(sid: str, size: int, token: str) -> None:
        request = pb.ListMessagesRequest(session_id=sid, page_size=size, page_token=token)
        expect_documented(lambda: stub.ListMessages(request))

    @FUZZ
    @given(sid=session_ids(sessions), turn=texts, size=ints, token=texts)
    def list_file_changes(sid: str, turn: str, size: int, token: str) -> None:
        request = pb.ListFileChangesRequest(
            session_id=sid, turn_id=turn, page_size=size, page_token=token
        )
        expect_documented(lambda: stub.ListFileChanges(request))

    @FUZZ
    @given(data=st.data())
    def submit(data: st.DataObject) -> None:
        request = pb.SubmitCommandRequest(
            session_id=data.draw(session_ids(sessions)),
            turn_id=data.draw(texts),
            command=data.draw(commands(sessions)),
        )
        expect_documented(lambda: stub.SubmitCommand(request))

    @FUZZ
    @given(sid=session_ids(sessions), turn=texts, clear=st.booleans())
    def cancel(sid: str, turn: str, clear: bool) -> None:
        request = pb.CancelTurnRequest(session_id=sid, turn_id=turn, clear_queue=clear)
        expect_documented(lambda: stub.CancelTurn(request))

    @FUZZ
    @given(sid=session_ids(sessions), turn=texts)
    def remove_queued(sid: str, turn: str) -> None:
        request = pb.RemoveQueuedTurnRequest(session_id=sid, turn_id=turn)
        expect_documented(lambda: stub.RemoveQueuedTurn(request))

    @FUZZ
    @given(sid=session_ids(sessions))
    def delete(sid: str) -> None:
        if sid in sessions:
            return  # keep the shared ones for the other properties
        expect_documented(lambda: stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid)))

    @FUZZ
    @given(st.just(None))
    def info(_: None) -> None:
        assert stub.GetServerInfo(pb.GetServerInfoRequest()).version

    workspaces = st.one_of(texts, st.just(str(workspace)), st.just("/\x00x"), st.just("/tmp"))

    @FUZZ
    @given(where=workspaces)
    def list_profiles(where: str) -> None:
        request = pb.ListAgentProfilesRequest(workspace=where)
        expect_documented(lambda: stub.ListAgentProfiles(request))

    @FUZZ
    @given(name=texts, where=workspaces)
    def get_profile(name: str, where: str) -> None:
        request = pb.GetAgentProfileRequest(name=name, workspace=where)
        expect_documented(lambda: stub.GetAgentProfile(request))

    @FUZZ
    @given(sid=session_ids(sessions + created))
    def compact(sid: str) -> None:
        request = pb.CompactSessionRequest(session_id=sid)
        expect_documented(lambda: stub.CompactSession(request))

    for prop in (create, update, fork, get, list_sessions, list_messages, list_file_changes,
                 submit, cancel, remove_queued, delete, info, list_profiles, get_profile,
                 compact):  # fmt: skip
        prop()
    # Delete what creating made, through the fuzzer's own RPC.
    for sid in created:
        expect_documented(
            lambda sid=sid: stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid))
        )


def test_fuzz_watch_session(stub: pb_grpc.SessionServiceStub, sessions: list[str]) -> None:
    @FUZZ
    @given(sid=session_ids(sessions), after=longs)
    def watch(sid: str, after: int) -> None:
        # Watching from the last seq waits for news: the deadline ends that (rare) case.
        request = pb.WatchSessionRequest(session_id=sid, after_seq=after)
        call = stub.WatchSession(request, timeout=5)
        try:
            next(call, None)  # the first event (or the error); then hang up
        except grpc.RpcError as e:
            allowed = DOCUMENTED | {grpc.StatusCode.DEADLINE_EXCEEDED}
            assert e.code() in allowed, f"{e.code()}: {e.details()}"
        finally:
            call.cancel()

    watch()


def test_fuzz_run_turn_command_orders(
    stub: pb_grpc.SessionServiceStub, sessions: list[str]
) -> None:
    """Random command sequences (any order, unknown requests, unknown enums), each ended by
    a cancel so no turn outlives its stream."""

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        starts = st.builds(
            lambda sid, text: epb.EngineCommand(
                start_turn=epb.StartTurn(session_id=sid, text=text)
            ),
            st.sampled_from(sessions),
            st.text(min_size=1, max_size=20),
        )
        first = data.draw(st.one_of(commands(sessions), starts))
        rest = data.draw(st.lists(commands(sessions), max_size=4))
        requests = [pb.RunTurnRequest(command=c) for c in [first, *rest]]
        requests.append(pb.RunTurnRequest(command=epb.EngineCommand(cancel=epb.Cancel())))
        call = stub.RunTurn(iter(requests), timeout=30)
        try:
            for response in call:
                if response.event.WhichOneof("payload") == "turn_ended":
                    break
        except grpc.RpcError as e:
            assert e.code() in DOCUMENTED, f"{e.code()}: {e.details()}"
        finally:
            call.cancel()

    run()


def test_concurrent_cancel_storms(stub: pb_grpc.SessionServiceStub, sessions: list[str]) -> None:
    """Turns started while many threads cancel them over and over: every call answers with a
    documented code and every turn ends."""
    errors: list[str] = []

    def storm() -> None:
        for _ in range(200):
            for sid in sessions:
                try:
                    stub.CancelTurn(pb.CancelTurnRequest(session_id=sid))
                except grpc.RpcError as e:
                    if e.code() not in DOCUMENTED:
                        errors.append(f"{e.code()}: {e.details()}")

    threads = [threading.Thread(target=storm) for _ in range(4)]
    for thread in threads:
        thread.start()
    ended = 0
    for i in range(40):
        sid = sessions[i % len(sessions)]
        start = epb.EngineCommand(start_turn=epb.StartTurn(session_id=sid, text=f"turn {i}"))
        try:
            for response in stub.RunTurn(iter([pb.RunTurnRequest(command=start)]), timeout=30):
                if response.event.WhichOneof("payload") == "turn_ended":
                    ended += 1
        except grpc.RpcError as e:
            assert e.code() in DOCUMENTED, f"{e.code()}: {e.details()}"
    for thread in threads:
        thread.join()
    assert errors == []
    assert ended > 0
