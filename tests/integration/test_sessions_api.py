"""Session CRUD, paging, fork and validation through a real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from tests.helpers import create_session, messages, run_turn, scripted, tool_call

Stub = pb_grpc.SessionServiceStub


async def expect(code: grpc.StatusCode, call: object, fragment: str = "") -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    details = err.value.details() or ""
    assert fragment in details
    return details


async def test_server_info_lists_tools_and_providers(stub: Stub) -> None:
    info = await stub.GetServerInfo(pb.GetServerInfoRequest())
    assert info.version
    assert list(info.tool_names) == [
        "read_file",
        "write_file",
        "edit_file",
        "delete_file",
        "list_dir",
        "glob",
        "grep",
        "bash",
        "todo_read",
        "todo_write",
        "ask_user",
        "memory_read",
        "memory_write",
        "recall_context",
        "web_fetch",
        "invoke_agent",
    ]
    assert spb.PROVIDER_KIND_OPENAI_COMPATIBLE in info.provider_kinds
    assert spb.PROVIDER_KIND_SCRIPTED in info.provider_kinds
    assert info.default_loop_cap == 50
    assert "run_turn" in info.capabilities


async def test_create_fills_defaults_and_get_returns_it(stub: Stub, workspace: Path) -> None:
    created = await create_session(
        stub, workspace, mode=spb.APPROVAL_MODE_UNSPECIFIED, title="t", labels={"team": "core"}
    )
    assert created.id.startswith("s_") and len(created.id) == 28
    assert created.approval_mode == spb.APPROVAL_MODE_CONFIRM
    assert created.provider.kind == spb.PROVIDER_KIND_SCRIPTED
    assert created.state == spb.SESSION_STATE_IDLE
    assert created.create_time.seconds > 0
    assert created.workspace == str(workspace.resolve())
    got = (await stub.GetSession(pb.GetSessionRequest(session_id=created.id))).session
    assert got == created


@pytest.mark.parametrize(
    ("session", "fragment"),
    [
        (spb.Session(), "session.workspace is required"),
        (spb.Session(workspace="relative/dir"), "must be an absolute path"),
        (spb.Session(workspace="/no/such/dir/anywhere"), "is not an existing directory"),
        (spb.Session(workspace="WS", labels={"Bad Key": "v"}), "label key 'Bad Key'"),
        (spb.Session(workspace="WS", loop_cap=-1), "session.loop_cap"),
        (
            spb.Session(workspace="WS", approval_mode=99),
            "session.approval_mode has an unknown value 99",
        ),
        (
            spb.Session(
                workspace="WS", provider=spb.ProviderConfig(kind=spb.PROVIDER_KIND_ANTHROPIC)
            ),
            "model is required for ANTHROPIC",
        ),
        (
            spb.Session(
                workspace="WS",
                provider=spb.ProviderConfig(
                    kind=spb.PROVIDER_KIND_ANTHROPIC, model="m", thinking_budget_tokens=5
                ),
            ),
            "thinking_budget_tokens",
        ),
        (
            spb.Session(workspace="WS", provider=spb.ProviderConfig(kind=9, model="m")),
            "session.provider.kind has an unknown value 9",
        ),
        (
            spb.Session(
                workspace="WS",
                provider=spb.ProviderConfig(kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE),
            ),
            "model is required",
        ),
        (
            spb.Session(
                workspace="WS",
                provider=spb.ProviderConfig(
                    kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url="ftp://x"
                ),
            ),
            "http(s) URL",
        ),
        (
            spb.Session(
                workspace="WS",
                provider=spb.ProviderConfig(
                    kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", api_key_env="sk-123 secret"
                ),
            ),
            "must name an environment variable",
        ),
        (
            spb.Session(workspace="WS", provider=spb.ProviderConfig(script_json="{nope")),
            "script is not valid JSON",
        ),
        (
            spb.Session(
                workspace="WS",
                provider=spb.ProviderConfig(script_json='{"rounds": [[{"dance": 1}]]}'),
            ),
            "round 0 step 0: unknown step",
        ),
        (spb.Session(workspace="WS", title="x" * 513), "session.title"),
    ],
)
async def test_create_rejects_bad_sessions(
    stub: Stub, workspace: Path, session: spb.Session, fragment: str
) -> None:
    if session.workspace == "WS":
        session.workspace = str(workspace)
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.CreateSession(pb.CreateSessionRequest(session=session)),
        fragment,
    )


async def test_create_requires_a_session(stub: Stub) -> None:
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.CreateSession(pb.CreateSessionRequest()),
        "session is required",
    )


async def test_unknown_and_missing_ids(stub: Stub) -> None:
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.GetSession(pb.GetSessionRequest(session_id="s_x")), "s_x"
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.GetSession(pb.GetSessionRequest()),
        "session_id is required",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.DeleteSession(pb.DeleteSessionRequest(session_id="s_x"))
    )
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.ForkSession(pb.ForkSessionRequest(session_id="s_x"))
    )
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.ListMessages(pb.ListMessagesRequest(session_id="s_x"))
    )
    await expect(grpc.StatusCode.NOT_FOUND, stub.CancelTurn(pb.CancelTurnRequest(session_id="s_x")))


async def test_list_pages_newest_first_and_filters_by_labels(stub: Stub, workspace: Path) -> None:
    ids = []
    for i in range(7):
        labels = {"team": "a" if i % 2 == 0 else "b", "n": str(i)}
        ids.append((await create_session(stub, workspace, labels=labels)).id)

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListSessions(pb.ListSessionsRequest(page_size=3, page_token=token))
        assert len(page.sessions) <= 3
        seen += [s.id for s in page.sessions]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    assert pages == 3

    team_a = await stub.ListSessions(pb.ListSessionsRequest(labels={"team": "a"}))
    assert [s.id for s in team_a.sessions] == [ids[6], ids[4], ids[2], ids[0]]
    assert all(s.labels["team"] == "a" for s in team_a.sessions)
    both = await stub.ListSessions(pb.ListSessionsRequest(labels={"team": "a", "n": "4"}))
    assert [s.id for s in both.sessions] == [ids[4]]

    first = await stub.ListSessions(pb.ListSessionsRequest(page_size=2, labels={"team": "a"}))
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.ListSessions(pb.ListSessionsRequest(page_token=first.next_page_token)),
        "different request",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.ListSessions(pb.ListSessionsRequest(page_token="garbage!")),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, stub.ListSessions(pb.ListSessionsRequest(page_size=5000))
    )


async def test_update_changes_only_masked_fields(stub: Stub, workspace: Path) -> None:
    created = await create_session(
        stub, workspace, title="old", labels={"k": "v"}, system_prompt="be brief"
    )
    change = spb.Session(
        id=created.id,
        title="new",
        loop_cap=7,
        approval_mode=spb.APPROVAL_MODE_READ_ONLY,
        system_prompt="ignored",
        labels={"x": "y"},
    )
    updated = (
        await stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=change,
                update_mask=FieldMask(paths=["title", "loop_cap", "approval_mode", "labels"]),
            )
        )
    ).session
    assert (updated.title, updated.loop_cap, updated.approval_mode) == (
        "new",
        7,
        spb.APPROVAL_MODE_READ_ONLY,
    )
    assert dict(updated.labels) == {"x": "y"}
    assert updated.system_prompt == "be brief"
    assert updated.update_time.ToMicroseconds() > created.update_time.ToMicroseconds()
    assert (await stub.GetSession(pb.GetSessionRequest(session_id=created.id))).session == updated

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.UpdateSession(
            pb.UpdateSessionRequest(session=change, update_mask=FieldMask(paths=["workspace"]))
        ),
        "cannot be updated",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.UpdateSession(pb.UpdateSessionRequest(session=change)),
        "update_mask must name at least one field",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=spb.Session(id="s_x"), update_mask=FieldMask(paths=["title"])
            )
        ),
    )


async def test_fork_copies_history_and_diverges(stub: Stub, workspace: Path) -> None:
    provider = scripted([tool_call("list_dir", "c1")], [{"text": "one"}], [{"text": "two"}])
    source = await create_session(stub, workspace, provider, title="src")
    await run_turn(stub, source.id, "first")

    fork = (await stub.ForkSession(pb.ForkSessionRequest(session_id=source.id))).session
    assert fork.id != source.id
    assert fork.title == "src (fork)"
    assert fork.last_seq == 0
    assert fork.message_count == 4
    original = await messages(stub, source.id)
    copied = await messages(stub, fork.id)
    assert [(m.role, m.text, m.index) for m in copied] == [
        (m.role, m.text, m.index) for m in original
    ]

    await run_turn(stub, fork.id, "second")
    assert len(await messages(stub, fork.id)) == 6
    assert len(await messages(stub, source.id)) == 4


async def test_delete_removes_everything(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    await run_turn(stub, session.id, "hi")
    await stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id))
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.GetSession(pb.GetSessionRequest(session_id=session.id))
    )
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.ListMessages(pb.ListMessagesRequest(session_id=session.id))
    )
    listed = await stub.ListSessions(pb.ListSessionsRequest())
    assert session.id not in [s.id for s in listed.sessions]


async def test_list_messages_pages(stub: Stub, workspace: Path) -> None:
    session = await create_session(stub, workspace)
    for i in range(3):
        await run_turn(stub, session.id, f"m{i}")
    page = await stub.ListMessages(pb.ListMessagesRequest(session_id=session.id, page_size=4))
    assert [m.index for m in page.messages] == [1, 2, 3, 4]
    rest = await stub.ListMessages(
        pb.ListMessagesRequest(session_id=session.id, page_size=4, page_token=page.next_page_token)
    )
    assert [m.index for m in rest.messages] == [5, 6]
    assert rest.next_page_token == ""
    assert [m.text for m in rest.messages] == ["m2", "You said: m2"]
