"""Shared fixtures: a real kodad server on a loopback port, a stub, a workspace."""

from __future__ import annotations

import os

# As the service's entry point does (kodad/__main__.py), before grpc is imported: the tests
# run servers in this process.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from kodad.config import SandboxConfig, ServerConfig
from kodad.domain.access import ProviderKeys
from kodad.engine.settings import EngineSettings
from kodad.gen.koda.v1 import session_service_pb2_grpc as pb_grpc
from kodad.server import Server
from tests.fakes.llm_server import FakeLLM
from tests.pg import PostgresCluster

FAKES = Path(__file__).parent / "fakes"
TEST_KEYS = tuple(
    (name, "127.0.0.1")
    for name in ("FAKE_OPENAI_KEY", "FAKE_ANTHROPIC_KEY", "KODAD_TEST_UNSET_KEY")
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def server_config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / "data",
        engine=EngineSettings(
            default_loop_cap=50,
            tool_output_limit=64 * 1024,
            # The keys the tests' fake LLM servers on loopback may receive.
            provider_keys=ProviderKeys((*ProviderKeys().grants, *TEST_KEYS)),
        ),
        shutdown_grace_s=1.0,
        provider_read_timeout_s=5.0,
        provider_retry_base_delay_s=0.01,
        # The fake MCP server's script, for servers the tests run in the sandbox.
        sandbox=SandboxConfig(read_paths=(FAKES,)),
    )


@pytest.fixture
async def server(server_config: ServerConfig) -> AsyncIterator[Server]:
    async with Server(server_config) as running:
        yield running


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pb_grpc.SessionServiceStub:
    return pb_grpc.SessionServiceStub(channel)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the test run; each test takes a fresh database of it."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def restarted(config: ServerConfig) -> ServerConfig:
    """The same data dir on a new port."""
    return dataclasses.replace(config, listen="127.0.0.1:0")


@pytest.fixture(autouse=True)
def global_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own global memory file (never the user's)."""
    path = tmp_path / "global-memory.md"
    monkeypatch.setenv("KODAD_GLOBAL_MEMORY", str(path))
    return path
