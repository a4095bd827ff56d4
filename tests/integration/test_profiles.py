"""Agent profiles through a real server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kodad.config import ServerConfig
from kodad.gen.koda.v1 import session_pb2 as spb
from kodad.gen.koda.v1 import session_service_pb2 as pb
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.helpers import finished_calls, run_turn, scripted, tool_call


async def test_profiles_restrict_tools_and_come_from_server_and_workspace(
    server_config: ServerConfig, tmp_path: Path, workspace: Path
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "reader.toml").write_text(
        'description = "reads only"\nallowed_tools = ["read_file", "grep"]\nloop_cap = 3\n'
    )
    (profiles / "broken.json").write_text("{not json")
    (workspace / ".kodad" / "agents").mkdir(parents=True)
    (workspace / ".kodad" / "agents" / "reviewer.json").write_text(
        json.dumps({"system_prompt": "Review carefully.", "disallowed_tools": ["bash"]})
    )
    (workspace / "a.txt").write_text("hello\n")
    engine = dataclasses.replace(server_config.engine, profiles_dir=profiles)
    config = dataclasses.replace(server_config, engine=engine)
    async with Server(config) as server, grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.SessionServiceStub(channel)
        listed = await stub.ListAgentProfiles(pb.ListAgentProfilesRequest(workspace=str(workspace)))
        assert [p.name for p in listed.profiles] == ["default", "reader", "reviewer"]
        reader = (await stub.GetAgentProfile(pb.GetAgentProfileRequest(name="reader"))).profile
        assert list(reader.allowed_tools) == ["read_file", "grep"] and reader.loop_cap == 3
        assert reader.source == str(profiles / "reader.toml")
        for name, code in (("nobody", grpc.StatusCode.NOT_FOUND),
                           ("broken", grpc.StatusCode.FAILED_PRECONDITION)):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.GetAgentProfile(pb.GetAgentProfileRequest(name=name))
            assert e.value.code() == code
        # A session with an unknown profile is refused.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.CreateSession(
                pb.CreateSessionRequest(session=spb.Session(workspace=str(workspace), profile="x"))
            )
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        # The reader may read but not write: a refused tool is a tool error naming the profile.
        session = spb.Session(
            workspace=str(workspace), profile="reader", approval_mode=spb.APPROVAL_MODE_AUTO
        )
        session.provider.CopyFrom(
            scripted(
                [tool_call("read_file", "r", path="a.txt")],
                [tool_call("write_file", "w", path="b.txt", content="x")],
                [{"text": "done"}],
            )
        )
        created = (await stub.CreateSession(pb.CreateSessionRequest(session=session))).session
        assert created.profile == "reader"
        results = finished_calls(await run_turn(stub, created.id, "go"))
        assert not results["r"].is_error
        assert results["w"].is_error
        assert "the agent profile 'reader' does not allow the tool 'write_file'" in (
            results["w"].output
        )
        assert not (workspace / "b.txt").exists()
        # The workspace's reviewer profile can be switched to.
        update = pb.UpdateSessionRequest(
            session=spb.Session(id=created.id, profile="reviewer"),
            update_mask=FieldMask(paths=["profile"]),
        )
        assert (await stub.UpdateSession(update)).session.profile == "reviewer"
