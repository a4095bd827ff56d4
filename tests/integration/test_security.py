"""Running beyond loopback: tokens, tenants, workspace roots, TLS and mutual TLS, limits,
secrets and metrics, each through a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodad.api.auth import hash_token
from kodad.config import Security, ServerConfig
from kodad.domain.access import Limits
from kodad.domain.errors import ConfigError
from kodad.gen.koda.v1 import engine_pb2 as epb
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.fakes.llm_server import Failure, FakeLLM
from tests.helpers import finished_calls, scripted, start, tool_call
from tests.kodad_process import KodadProcess

TOKENS = {"alice": "tok-alice", "bob": "tok-bob", "root": "tok-root"}


def tokens_toml(tokens: dict[str, str], admin: str = "root") -> str:
    lines = []
    for tenant, token in tokens.items():
        lines += ["[[tokens]]", f'sha256 = "{hash_token(token)}"', f'tenant = "{tenant}"']
        if tenant == admin:
            lines.append('role = "admin"')
    return "\n".join(lines) + "\n"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(tokens_toml(TOKENS))
    return path


def secured(config: ServerConfig, **security: Any) -> ServerConfig:
    return dataclasses.replace(config, security=Security(**security))


@pytest.fixture
async def auth_server(server_config: ServerConfig, tokens_file: Path) -> AsyncIterator[Server]:
    async with Server(secured(server_config, tokens_file=tokens_file)) as running:
        yield running


@pytest.fixture
async def auth_stub(auth_server: Server) -> AsyncIterator[pb_grpc.SessionServiceStub]:
    async with grpc.aio.insecure_channel(auth_server.address) as channel:
        yield pb_grpc.SessionServiceStub(channel)


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value.code()


async def first_event_code(stub: pb_grpc.SessionServiceStub, *requests: Any, **kw: Any) -> Any:
    call = stub.RunTurn(iter(requests), **kw)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in call:
            pass
    return e.value


async def new_session(
    stub: pb_grpc.SessionServiceStub, token: str, workspace: Path, **fields: Any
) -> spb.Session:
    session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_CONFIRM)
    for key, value in fields.items():
        if key == "provider":
            session.provider.CopyFrom(value)
        else:
            setattr(session, key, value)
    response = await stub.CreateSession(
        pb.CreateSessionRequest(session=session), metadata=bearer(token)
    )
    return response.session


# Authentication


async def test_missing_or_bad_token_is_unauthenticated_on_every_kind_of_rpc(
    auth_stub: pb_grpc.SessionServiceStub, auth_server: Server, workspace: Path
) -> None:
    for metadata in ((), bearer("wrong"), (("authorization", "Basic abc"),)):
        assert await code_of(
            auth_stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=metadata)
        ) == (grpc.StatusCode.UNAUTHENTICATED)
        assert await code_of(
            auth_stub.ListSessions(pb.ListSessionsRequest(), metadata=metadata)
        ) == (grpc.StatusCode.UNAUTHENTICATED)
        watch = auth_stub.WatchSession(pb.WatchSessionRequest(session_id="s_x"), metadata=metadata)
        assert await code_of(watch.read()) == grpc.StatusCode.UNAUTHENTICATED
        error = await first_event_code(auth_stub, start("s_x", "hi"), metadata=metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    # The right token passes; health needs none.
    info = await auth_stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=bearer("tok-alice"))
    assert info.version
    async with grpc.aio.insecure_channel(auth_server.address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_unauthenticated_message_says_what_is_missing(
    auth_stub: pb_grpc.SessionServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await auth_stub.ListSessions(pb.ListSessionsRequest())
    assert "Bearer" in (e.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await auth_stub.ListSessions(pb.ListSessionsRequest(), metadata=bearer("nope"))
    assert e.value.details() == "the bearer token is not valid"


def test_sighup_reloads_the_tokens_file(tmp_path: Path, tokens_file: Path) -> None:
    process = KodadProcess(tmp_path / "data", "--tokens-file", str(tokens_file))
    try:
        with grpc.insecure_channel(process.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            request = pb.ListSessionsRequest()
            stub.ListSessions(request, metadata=bearer("tok-alice"))
            with pytest.raises(grpc.RpcError) as e:
                stub.ListSessions(request, metadata=bearer("tok-carol"))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            tokens_file.write_text(tokens_toml({"carol": "tok-carol"}))
            process.process.send_signal(signal.SIGHUP)
            # The reload is logged once done; wait for that line rather than for time.
            process.wait_for_log("reloaded 1 token(s)")
            stub.ListSessions(request, metadata=bearer("tok-carol"))
            with pytest.raises(grpc.RpcError) as e:
                stub.ListSessions(request, metadata=bearer("tok-alice"))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # A broken file keeps the tokens that work.
            tokens_file.write_text("[[tokens]]\nsha256 = 'short'\n")
            process.process.send_signal(signal.SIGHUP)
            process.wait_for_log("tokens not reloaded")
            stub.ListSessions(request, metadata=bearer("tok-carol"))
    finally:
        process.close()


def test_non_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"refusing to serve on 0\.0\.0\.0:0 without auth"):
        Server(ServerConfig(listen="0.0.0.0:0", data_dir=tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "kodad", "serve", "--listen", "0.0.0.0:0", "--data-dir",
         str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--tokens-file" in done.stderr and "--insecure-no-auth" in done.stderr


async def test_insecure_no_auth_serves_beyond_loopback_with_a_warning(
    server_config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    config = dataclasses.replace(server_config, listen="0.0.0.0:0")
    async with (
        Server(secured(config, insecure_no_auth=True)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        await pb_grpc.SessionServiceStub(channel).ListSessions(pb.ListSessionsRequest())
    assert "SERVING WITHOUT AUTHENTICATION" in caplog.text


def test_tokens_file_errors_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text('[[tokens]]\nsha256 = "' + "a" * 64 + '"\ntenant = "x"\nrole = "root"\n')
    with pytest.raises(ConfigError, match=r"tokens\[0\]: role must be 'admin'"):
        Server(ServerConfig(data_dir=tmp_path, security=Security(tokens_file=path)))


def test_token_new_prints_a_working_entry(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kodad", "token", "new", "--tenant", "acme"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    token = done.stdout.splitlines()[0].removeprefix("token: ")
    entry = done.stdout.split("\n", 2)[2]
    assert f'sha256 = "{hash_token(token)}"' in entry and 'tenant = "acme"' in entry


# Tenants


async def test_every_rpc_sees_only_its_tenants_sessions(
    auth_stub: pb_grpc.SessionServiceStub, workspace: Path
) -> None:
    provider = scripted([tool_call("write_file", "w", path="a.txt", content="x")], [{"text": "ok"}])
    mine = await new_session(auth_stub, "tok-alice", workspace, provider=provider)
    assert mine.tenant == "alice"
    theirs = bearer("tok-bob")
    sid = mine.id
    not_found = grpc.StatusCode.NOT_FOUND
    # A turn of alice's waits for approval, so the turn RPCs have something to reach.
    turn = auth_stub.RunTurn(iter([start(sid, "write")]), metadata=bearer("tok-alice"))
    async for response in turn:
        if response.event.WhichOneof("payload") == "approval_requested":
            request_id = response.event.approval_requested.request_id
            break
    unary: list[Callable[[], Awaitable[Any]]] = [
        lambda: auth_stub.GetSession(pb.GetSessionRequest(session_id=sid), metadata=theirs),
        lambda: auth_stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=spb.Session(id=sid, title="x"), update_mask={"paths": ["title"]}
            ),
            metadata=theirs,
        ),
        lambda: auth_stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid), metadata=theirs),
        lambda: auth_stub.ForkSession(pb.ForkSessionRequest(session_id=sid), metadata=theirs),
        lambda: auth_stub.ListMessages(pb.ListMessagesRequest(session_id=sid), metadata=theirs),
        lambda: auth_stub.ListFileChanges(
            pb.ListFileChangesRequest(session_id=sid), metadata=theirs
        ),
        lambda: auth_stub.SubmitCommand(
            pb.SubmitCommandRequest(
                session_id=sid,
                command=epb.EngineCommand(
                    approval_decision=epb.ApprovalDecision(
                        request_id=request_id, decision=epb.DECISION_APPROVE
                    )
                ),
            ),
            metadata=theirs,
        ),
        lambda: auth_stub.CancelTurn(pb.CancelTurnRequest(session_id=sid), metadata=theirs),
    ]
    for call in unary:
        assert await code_of(call()) == not_found
    watch = auth_stub.WatchSession(pb.WatchSessionRequest(session_id=sid), metadata=theirs)
    assert await code_of(watch.read()) == not_found
    error = await first_event_code(auth_stub, start(sid, "mine now"), metadata=theirs)
    assert error.code() == not_found
    listed = await auth_stub.ListSessions(pb.ListSessionsRequest(), metadata=theirs)
    assert [s.id for s in listed.sessions] == []
    # Nothing bob tried reached the turn: it still waits; the admin sees and answers it.
    everyone = await auth_stub.ListSessions(pb.ListSessionsRequest(), metadata=bearer("tok-root"))
    assert [s.id for s in everyone.sessions] == [sid]
    await auth_stub.CancelTurn(pb.CancelTurnRequest(session_id=sid), metadata=bearer("tok-root"))
    kinds = [r.event.WhichOneof("payload") async for r in turn]
    assert kinds[-1] == "turn_ended"
    assert not (workspace / "a.txt").exists()
    own = await auth_stub.GetSession(
        pb.GetSessionRequest(session_id=sid), metadata=bearer("tok-alice")
    )
    assert own.session.title == "write" and own.session.tenant == "alice"  # her first prompt


# Workspace roots


async def test_workspaces_outside_the_roots_are_permission_denied(
    server_config: ServerConfig, tmp_path: Path, tokens_file: Path
) -> None:
    root = tmp_path / "root"
    (root / "project").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    config = secured(server_config, tokens_file=tokens_file, workspace_roots=(root,))
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        ok = await new_session(stub, "tok-alice", root / "project")
        assert ok.workspace == str(root / "project")
        for path in (outside, root / "escape", root / "project" / ".." / ".." / "outside"):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await new_session(stub, "tok-alice", path)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "outside the allowed roots" in (e.value.details() or "")


async def test_a_tenant_entry_can_have_its_own_roots(
    server_config: ServerConfig, tmp_path: Path
) -> None:
    mine, other = tmp_path / "alice", tmp_path / "shared"
    mine.mkdir()
    other.mkdir()
    path = tmp_path / "tokens.toml"
    path.write_text(
        tokens_toml({"bob": "tok-bob"})
        + f'[[tokens]]\nsha256 = "{hash_token("tok-alice")}"\ntenant = "alice"\n'
        + f'workspace_roots = ["{mine}"]\n'
    )
    config = secured(server_config, tokens_file=path, workspace_roots=(other,))
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        await new_session(stub, "tok-alice", mine)
        await new_session(stub, "tok-bob", other)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await new_session(stub, "tok-alice", other)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


# TLS


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def pem_files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    files = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
    }
    files["ca"].write_bytes(ca.cert_pem.bytes())
    files["cert"].write_bytes(b"".join(b.bytes() for b in server_cert.cert_chain_pems))
    files["key"].write_bytes(server_cert.private_key_pem.bytes())
    return files


async def test_tls_with_tokens(
    server_config: ServerConfig, tmp_path: Path, ca: trustme.CA, tokens_file: Path
) -> None:
    files = pem_files(tmp_path, ca)
    config = secured(
        server_config, tokens_file=tokens_file, tls_cert=files["cert"], tls_key=files["key"]
    )
    async with Server(config) as running:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        address = f"localhost:{running.port}"
        async with grpc.aio.secure_channel(address, credentials) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            await stub.ListSessions(pb.ListSessionsRequest(), metadata=bearer("tok-alice"))
        # Plaintext to a TLS port fails.
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            assert await code_of(
                stub.ListSessions(pb.ListSessionsRequest(), metadata=bearer("tok-alice"), timeout=5)
            ) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_mutual_tls_names_the_tenant_and_refuses_clients_without_a_certificate(
    server_config: ServerConfig, tmp_path: Path, ca: trustme.CA, workspace: Path
) -> None:
    files = pem_files(tmp_path, ca)
    config = dataclasses.replace(
        secured(server_config, tls_cert=files["cert"], tls_key=files["key"], client_ca=files["ca"]),
        listen="0.0.0.0:0",  # mutual TLS counts as authentication beyond loopback
    )
    client = ca.issue_cert("team-blue.example", common_name="team-blue")
    async with Server(config) as running:
        address = f"localhost:{running.port}"
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.bytes(),
            private_key=client.private_key_pem.bytes(),
            certificate_chain=b"".join(b.bytes() for b in client.cert_chain_pems),
        )
        async with grpc.aio.secure_channel(address, with_cert) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            created = await stub.CreateSession(
                pb.CreateSessionRequest(session=spb.Session(workspace=str(workspace)))
            )
            assert created.session.tenant == "team-blue"
        without = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with grpc.aio.secure_channel(address, without) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            assert (
                await code_of(stub.ListSessions(pb.ListSessionsRequest(), timeout=5))
                == grpc.StatusCode.UNAVAILABLE
            )


# Limits


async def limited(server_config: ServerConfig, **limits: int) -> Server:
    engine = dataclasses.replace(server_config.engine, limits=Limits(**limits))
    return Server(dataclasses.replace(server_config, engine=engine))


async def exhausted(call: Awaitable[Any], limit: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limit in (e.value.details() or "")


async def test_session_and_input_limits(server_config: ServerConfig, workspace: Path) -> None:
    async with (
        await limited(server_config, sessions_per_tenant=2, input_bytes=10) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = pb_grpc.SessionServiceStub(channel)
        request = pb.CreateSessionRequest(session=spb.Session(workspace=str(workspace)))
        first = (await stub.CreateSession(request)).session
        await stub.CreateSession(request)
        await exhausted(stub.CreateSession(request), "sessions_per_tenant")
        await exhausted(
            stub.ForkSession(pb.ForkSessionRequest(session_id=first.id)), "sessions_per_tenant"
        )
        error = await first_event_code(stub, start(first.id, "x" * 11))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "input_bytes" in (error.details() or "")


async def waiting_turn(stub: pb_grpc.SessionServiceStub, workspace: Path, **kw: Any) -> Any:
    """A turn that waits for an approval (so it keeps running)."""
    provider = scripted([tool_call("write_file", "w", path="a.txt", content="x")])
    session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_CONFIRM)
    session.provider.CopyFrom(provider)
    created = (await stub.CreateSession(pb.CreateSessionRequest(session=session), **kw)).session
    call = stub.RunTurn(iter([start(created.id, "write")]), **kw)
    async for response in call:
        if response.event.WhichOneof("payload") == "approval_requested":
            return created, call
    raise AssertionError("no approval asked")


async def test_turn_limits_global_and_per_tenant(
    server_config: ServerConfig, workspace: Path, tokens_file: Path
) -> None:
    config = secured(server_config, tokens_file=tokens_file)
    engine = dataclasses.replace(config.engine, limits=Limits(turns=2, turns_per_tenant=1))
    async with (
        Server(dataclasses.replace(config, engine=engine)) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = pb_grpc.SessionServiceStub(channel)
        alice, bob = bearer("tok-alice"), bearer("tok-bob")
        _, alice_turn = await waiting_turn(stub, workspace, metadata=alice)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await waiting_turn(stub, workspace, metadata=alice)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "turns_per_tenant" in (e.value.details() or "")
        _, bob_turn = await waiting_turn(stub, workspace, metadata=bob)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await waiting_turn(stub, workspace, metadata=bearer("tok-root"))
        assert "the turns limit" in (e.value.details() or "")
        alice_turn.cancel()
        bob_turn.cancel()


async def test_watcher_limit(server_config: ServerConfig, workspace: Path) -> None:
    async with (
        await limited(server_config, watchers_per_session=2) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = pb_grpc.SessionServiceStub(channel)
        session, turn = await waiting_turn(stub, workspace)
        request = pb.WatchSessionRequest(session_id=session.id)
        watchers = [stub.WatchSession(request) for _ in range(2)]
        for watcher in watchers:
            await watcher.read()  # each one is open and replaying
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.WatchSession(request).read()
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "watchers_per_session" in (e.value.details() or "")
        watchers[0].cancel()
        # The freed slot can be taken again once the server saw the cancel.
        for _ in range(100):
            again = stub.WatchSession(request)
            try:
                await again.read()
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0)
        else:
            raise AssertionError("the cancelled watcher's slot was never freed")
        turn.cancel()


async def test_message_size_limit(server_config: ServerConfig, workspace: Path) -> None:
    config = dataclasses.replace(server_config, max_message_bytes=4096)
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        big = spb.Session(workspace=str(workspace), system_prompt="x" * 10_000)
        await exhausted(stub.CreateSession(pb.CreateSessionRequest(session=big)), "larger than max")


# Secrets


async def test_api_keys_never_leave_the_process(
    server_config: ServerConfig,
    workspace: Path,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-live-0123456789abcdef-secret"
    monkeypatch.setenv("FAKE_OPENAI_KEY", secret)
    fake_llm.replies.append(Failure(401, {"error": {"message": "bad key", "type": "auth"}}))
    async with Server(server_config) as running, grpc.aio.insecure_channel(running.address) as ch:
        stub = pb_grpc.SessionServiceStub(ch)
        session = spb.Session(workspace=str(workspace), approval_mode=spb.APPROVAL_MODE_AUTO)
        session.provider.CopyFrom(
            spb.ProviderConfig(
                kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                model="m",
                base_url=fake_llm.base_url,
                api_key_env="FAKE_OPENAI_KEY",
            )
        )
        created = (await stub.CreateSession(pb.CreateSessionRequest(session=session))).session
        events = [r async for r in stub.RunTurn(iter([start(created.id, "hi")]))]
        assert events[-1].event.turn_ended.reason == epb.TURN_END_REASON_FAILED
        got = await stub.GetSession(pb.GetSessionRequest(session_id=created.id))
        messages = await stub.ListMessages(pb.ListMessagesRequest(session_id=created.id))
        # The key went to the provider, and nowhere else.
        assert fake_llm.requests[-1].headers["authorization"] == f"Bearer {secret}"
        seen = [str(got), str(messages), *(str(e) for e in events), caplog.text]
        assert not any(secret in text for text in seen)
    for path in (server_config.data_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


# Observability


async def test_metrics_are_served(server_config: ServerConfig, workspace: Path) -> None:
    config = dataclasses.replace(server_config, metrics_listen="127.0.0.1:0")
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        _, turn = await waiting_turn(stub, workspace)
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
        assert 'kodad_rpcs_total{code="OK",method="CreateSession"}' in page
        assert "kodad_turns_running 1.0" in page
        assert "kodad_approvals_waiting 1.0" in page
        assert "kodad_events_total" in page
        turn.cancel()
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSession(pb.GetSessionRequest(session_id="s_missing"))
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
        assert 'kodad_rpcs_total{code="NOT_FOUND",method="GetSession"}' in page


def test_json_logs_carry_session_and_turn(tmp_path: Path, workspace: Path) -> None:
    # A provider that cannot connect makes the turn log a retry warning from its own task.
    process = KodadProcess(tmp_path / "data", "--log-format", "json")
    try:
        with grpc.insecure_channel(process.address) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            session = spb.Session(workspace=str(workspace))
            session.provider.CopyFrom(
                spb.ProviderConfig(
                    kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m",
                    base_url="http://127.0.0.1:9/v1",
                )
            )  # fmt: skip
            created = stub.CreateSession(pb.CreateSessionRequest(session=session)).session
            list(stub.RunTurn(iter([start(created.id, "hi")])))
        line = process.wait_for_log(f'"session_id": "{created.id}"')
    finally:
        process.close()
    entry = json.loads(line)
    assert entry["session_id"] == created.id and entry["turn_id"].startswith("t_")
    assert entry["level"] in ("WARNING", "ERROR", "INFO")


# Tenants share nothing


async def test_global_memory_is_per_tenant(
    auth_stub: pb_grpc.SessionServiceStub, workspace: Path
) -> None:
    write = scripted(
        [tool_call("memory_write", "w", content="alice's secret plan", scope="global")],
        [{"text": "noted"}],
    )
    read = scripted([tool_call("memory_read", "r", scope="global")], [{"text": "read"}])
    auto = spb.APPROVAL_MODE_AUTO
    alice = await new_session(auth_stub, "tok-alice", workspace, provider=write, approval_mode=auto)
    bob = await new_session(auth_stub, "tok-bob", workspace, provider=read, approval_mode=auto)
    alice_turn = auth_stub.RunTurn(
        iter([start(alice.id, "remember")]), metadata=bearer("tok-alice")
    )
    await drain(alice_turn)
    events = await drain(auth_stub.RunTurn(iter([start(bob.id, "x")]), metadata=bearer("tok-bob")))
    result = finished_calls([r.event for r in events])["r"]
    assert "secret plan" not in result.output and result.output == "(memory is empty)"


async def drain(call: Any) -> list[Any]:
    return [r async for r in call]


@pytest.mark.parametrize(
    ("key", "base_url"),
    [
        ("KODAD_TEST_OPERATOR_SECRET", "http://127.0.0.1:9/v1"),  # any variable of the service
        ("OPENAI_API_KEY", "http://127.0.0.1:9/v1"),  # the operator's key, to the tenant's host
        ("ANTHROPIC_API_KEY", ""),  # an OpenAI-compatible session would send it to OpenAI
    ],
)
async def test_a_tenant_cannot_have_the_operators_keys_sent_to_it(
    auth_stub: pb_grpc.SessionServiceStub, workspace: Path, key: str, base_url: str
) -> None:
    provider = spb.ProviderConfig(
        kind=spb.PROVIDER_KIND_OPENAI_COMPATIBLE, model="m", base_url=base_url, api_key_env=key
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await new_session(auth_stub, "tok-alice", workspace, provider=provider)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert key in (e.value.details() or "")
    # Nor by changing a session it has.
    session = await new_session(auth_stub, "tok-alice", workspace)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await auth_stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=spb.Session(id=session.id, provider=provider),
                update_mask=FieldMask(paths=["provider"]),
            ),
            metadata=bearer("tok-alice"),
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_workspace_swapped_for_a_symlink_is_checked_again_at_each_turn(
    server_config: ServerConfig, tmp_path: Path, tokens_file: Path
) -> None:
    root = tmp_path / "root"
    project = root / "project"
    project.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    config = secured(server_config, tokens_file=tokens_file, workspace_roots=(root,))
    async with Server(config) as running, grpc.aio.insecure_channel(running.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        session = await new_session(stub, "tok-alice", project)
        project.rmdir()
        project.symlink_to(outside)
        error = await first_event_code(stub, start(session.id, "hi"), metadata=bearer("tok-alice"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "outside the allowed roots" in (error.details() or "")


async def test_revoking_a_token_ends_its_streams_and_refuses_its_commands(
    auth_server: Server, auth_stub: pb_grpc.SessionServiceStub, workspace: Path, tokens_file: Path
) -> None:
    created, turn = await waiting_turn(auth_stub, workspace, metadata=bearer("tok-bob"))
    watch = auth_stub.WatchSession(
        pb.WatchSessionRequest(session_id=created.id), metadata=bearer("tok-bob")
    )
    await watch.read()  # the watcher is attached
    tokens_file.write_text(tokens_toml({k: v for k, v in TOKENS.items() if k != "bob"}))
    auth_server.auth.reload()
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in turn:  # the turn waiting for bob's approval
            pass
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (e.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        while await watch.read() is not grpc.aio.EOF:
            pass
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await auth_stub.CancelTurn(
            pb.CancelTurnRequest(session_id=created.id), metadata=bearer("tok-bob")
        )
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Alice's token still works.
    await new_session(auth_stub, "tok-alice", workspace)


async def test_reflection_needs_a_token_when_auth_is_on(auth_server: Server) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async with grpc.aio.insecure_channel(auth_server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for _ in stub.ServerReflectionInfo(iter([request])):
                pass
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = [
            r async for r in stub.ServerReflectionInfo(iter([request]), metadata=bearer("tok-bob"))
        ]
        names = [s.name for s in answers[0].list_services_response.service]
        assert "koda.v1.SessionService" in names
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_session_limit_holds_under_concurrent_creates(
    server_config: ServerConfig, workspace: Path
) -> None:
    async with (
        await limited(server_config, sessions_per_tenant=5) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = pb_grpc.SessionServiceStub(channel)
        request = pb.CreateSessionRequest(session=spb.Session(workspace=str(workspace)))
        results = await asyncio.gather(
            *(stub.CreateSession(request) for _ in range(30)), return_exceptions=True
        )
        created = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(created) == 5 and len(refused) == 25
        assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
