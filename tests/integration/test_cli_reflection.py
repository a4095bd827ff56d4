"""The `kodad serve` binary, driven by a client that knows the API from reflection alone."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "koda.v1.SessionService"


class Kodad:
    """A `kodad serve` child process on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kodad",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if match := re.search(r"serving on (\S+)", line):
                self.address = match.group(1)
                break
        else:
            raise RuntimeError(f"kodad exited with {self.process.wait()}")
        # Keep reading its log so the child never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def kodad(tmp_path: Path) -> Iterator[Kodad]:
    server = Kodad(tmp_path / "data")
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


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
    kodad: Kodad, tmp_path: Path
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
    assert payloads == [
        "turnStarted",
        "toolCallStarted",
        "fileChanged",
        "toolCallFinished",
        "textDelta",
        "turnEnded",
    ]
    assert events[-1]["event"]["turnEnded"]["reason"] == "TURN_END_REASON_COMPLETED"
    assert (workspace / "r.txt").read_text() == "ok"
    assert kodad.stop() == 0


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
