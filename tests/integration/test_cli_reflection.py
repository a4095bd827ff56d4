"""The `kodad serve` binary, driven by a client that knows the API from reflection alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.kodad_process import KodadProcess

SERVICE = "koda.v1.SessionService"


@pytest.fixture
def kodad(tmp_path: Path) -> Iterator[KodadProcess]:
    server = KodadProcess(tmp_path / "data")
    yield server
    server.close()


class ReflectedClient:
    """Calls SessionService with message types fetched through server reflection."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.service = self.pool.FindServiceByName(SERVICE)

    def _types(self, method: str) -> tuple[Any, Any]:
        m = self.service.methods_by_name[method]
        return (
            message_factory.GetMessageClass(m.input_type),
            message_factory.GetMessageClass(m.output_type),
        )

    def call(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        req_type, resp_type = self._types(method)
        rpc = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_type.FromString,
        )
        return json_format.MessageToDict(rpc(json_format.ParseDict(request, req_type())))

    def stream(self, method: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        req_type, resp_type = self._types(method)
        rpc = self.channel.stream_stream(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_type.FromString,
        )
        messages = (json_format.ParseDict(r, req_type()) for r in requests)
        return [json_format.MessageToDict(r) for r in rpc(messages)]


def test_reflection_alone_drives_a_turn_and_sigterm_exits_cleanly(
    kodad: KodadProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with grpc.insecure_channel(kodad.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        client = ReflectedClient(channel)
        script = {
            "rounds": [
                [
                    {
                        "tool_call": {
                            "name": "write_file",
                            "arguments": {"path": "r.txt", "content": "ok"},
                        }
                    }
                ],
                [{"text": "done"}],
            ]
        }
        session = client.call(
            "CreateSession",
            {
                "session": {
                    "workspace": str(workspace),
                    "approvalMode": "APPROVAL_MODE_AUTO",
                    "provider": {
                        "kind": "PROVIDER_KIND_SCRIPTED",
                        "scriptJson": json.dumps(script),
                    },
                }
            },
        )["session"]
        events = client.stream(
            "RunTurn", [{"command": {"startTurn": {"sessionId": session["id"], "text": "go"}}}]
        )

    payloads = [
        next(k for k in e["event"] if k not in ("sessionId", "turnId", "seq", "createTime"))
        for e in events
    ]
    assert [p for p in payloads if p != "contextUsage"] == [
        "turnStarted",
        "toolCallStarted",
        "checkpointTaken",
        "fileChanged",
        "checkpointTaken",
        "toolCallFinished",
        "textDelta",
        "turnDiff",
        "turnEnded",
    ]
    assert events[-1]["event"]["turnEnded"]["reason"] == "TURN_END_REASON_COMPLETED"
    assert (workspace / "r.txt").read_text() == "ok"
    assert kodad.terminate() == 0


def test_data_dir_comes_from_the_environment(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KODAD_DATA_DIR": str(tmp_path / "from-env"),
        "KODAD_LISTEN": "127.0.0.1:0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kodad", "serve"], stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "serving on" in line:
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert (tmp_path / "from-env" / "kodad.db").exists()


def test_serve_plays_a_script_file_for_sessions_created_without_a_provider(
    tmp_path: Path,
) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rounds": [[{"text": "from the file"}]]}))
    kodad = KodadProcess(tmp_path / "data", "--script-json", str(script))
    try:
        with grpc.insecure_channel(kodad.address) as channel:
            client = ReflectedClient(channel)
            workspace = tmp_path / "w"
            workspace.mkdir()
            created = client.call("CreateSession", {"session": {"workspace": str(workspace)}})
            sid = created["session"]["id"]
            events = client.stream(
                "RunTurn", [{"command": {"startTurn": {"sessionId": sid, "text": "go"}}}]
            )
        text = "".join(e["event"].get("textDelta", {}).get("text", "") for e in events)
        assert text == "from the file"
    finally:
        kodad.close()


@pytest.mark.parametrize(
    ("how", "why"),
    [("file", "--script-json"), ("env", "KODAD_SCRIPT_JSON")],
)
def test_a_bad_default_script_stops_serve_at_start_up(tmp_path: Path, how: str, why: str) -> None:
    script = tmp_path / "script.json"
    script.write_text('{"rounds": [[{"tool_call": {}}]]}')
    env = {**os.environ, "KODAD_LISTEN": "127.0.0.1:0"}
    argv = [sys.executable, "-m", "kodad", "serve", "--data-dir", str(tmp_path / "d")]
    if how == "file":
        argv += ["--script-json", str(script)]
    else:
        env["KODAD_SCRIPT_JSON"] = script.read_text()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert why in done.stderr and '"tool_call" needs a "name"' in done.stderr
    assert "serving on" not in done.stderr


def test_reflection_serves_the_protos_comments(kodad: KodadProcess) -> None:
    with grpc.insecure_channel(kodad.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        asked = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
        (answer,) = list(stub.ServerReflectionInfo(iter([asked]), timeout=10))
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    service_file = next(f for f in files if f.name == "koda/v1/session_service.proto")
    comments = [loc.leading_comments for loc in service_file.source_code_info.location]
    run_turn = next(c for c in comments if c.lstrip().startswith("Runs one turn."))
    assert "user_answer" in run_turn  # what `grpcurl describe koda.v1.SessionService` shows
    assert {"koda/v1/engine.proto", "google/protobuf/timestamp.proto"} <= {f.name for f in files}
