"""The gRPC server: SessionService, health and reflection, with an explicit lifecycle."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import gc
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kodad import __version__, metrics
from kodad.api.auth import Authenticator, ReflectionAuth
from kodad.api.reflection import CommentedPool
from kodad.api.servicer import SessionServicer
from kodad.config import ServerConfig, unix_socket_path
from kodad.domain.errors import ConfigError
from kodad.engine.manager import SessionManager
from kodad.gen.koda.v1 import session_service_pb2, session_service_pb2_grpc
from kodad.providers import ProviderRegistry, RetryPolicy
from kodad.store import SqliteStore, Store
from kodad.store.base import Cluster
from kodad.tools import default_registry
from kodad.tools.memory import global_memory_file
from kodad.tools.sandbox import Sandbox

log = logging.getLogger(__name__)

SERVICE_NAME = session_service_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name


def _private_paths(config: ServerConfig) -> tuple[Path, ...]:
    """What the service keeps that no session's process may see (masked in the sandbox
    wherever it lies under a directory the sandbox shows)."""
    security = config.security
    paths = [config.data_dir, global_memory_file().parent, *security.workspace_roots]
    paths += [p for p in (security.tokens_file, security.tls_key, security.client_ca) if p]
    if config.engine.profiles_dir is not None:
        paths.append(config.engine.profiles_dir)
    if config.engine.snapshot_dir is not None:  # every workspace's checkpoints
        paths.append(config.engine.snapshot_dir)
    return tuple(paths)


def _take_socket(path: Path) -> None:
    """Removes a stale socket file of an earlier run; OSError when a server answers on it."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise OSError(f"cannot listen on unix://{path}: address already in use (a server answers)")


def _lock_data_dir(config: ServerConfig) -> int:
    """An exclusive lock on the data dir for as long as this server runs (SQLite: one
    service per database); OSError naming the directory when another server holds it."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "kodad.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise OSError(
            f"the data dir {config.data_dir} is in use by another kodad (pid {owner})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


# Streams one client connection may have open at once, stated: with gRPC's default, 500
# RunTurns opened at once on one channel of a busy server had their last tenth start only
# once the first ones ended (bench/sse_load.py: first token p99 7.7 s; stated, 2.8 s).
MAX_STREAMS_PER_CONNECTION = 10_000


class Server:
    """`async with Server(config) as server:` serves until the block ends, then drains."""

    def __init__(self, config: ServerConfig) -> None:
        config.security.check(config.listen)
        self.config = config
        security = config.security
        self.auth = Authenticator(
            tokens_file=security.tokens_file,
            client_certificates=security.client_ca is not None,
            workspace_roots=security.workspace_roots,
            launch_token=security.launch_token,
        )
        self.store: Store
        cluster: Cluster | None = None
        if config.store.startswith(("postgres://", "postgresql://")):
            from kodad.store.postgres import PostgresStore

            postgres = PostgresStore(
                config.store, replica_id=config.replica_id, lease_ttl_s=config.lease_ttl_s
            )
            self.store, cluster = postgres, postgres.cluster
        elif config.store:
            raise ConfigError(
                f"unsupported store {config.store!r}: give a postgres:// URL, or nothing for "
                "the SQLite file in the data dir"
            )
        else:
            self.store = SqliteStore(config.database)
        self.providers = ProviderRegistry(
            connect_timeout_s=config.provider_connect_timeout_s,
            read_timeout_s=config.provider_read_timeout_s,
            retry=RetryPolicy(
                attempts=config.provider_retry_attempts,
                base_delay_s=config.provider_retry_base_delay_s,
            ),
        )
        sandbox = Sandbox.detect(hidden=_private_paths(config), readable=config.sandbox.read_paths)
        config.sandbox.check(config.listen, sandbox.available, sandbox.info.reason)
        if not sandbox.available:
            log.warning(
                "NO SANDBOX (%s): sessions' commands run unconfined on this host, and "
                "CONFIRM rests on the command classifier alone",
                sandbox.info.reason,
            )
        engine = dataclasses.replace(
            config.engine,
            sandbox=sandbox,
            allow_full_access=config.sandbox.allow_full_access,
            snapshot_dir=config.engine.snapshot_dir or config.data_dir / "snapshots",
        )
        self.manager = SessionManager(
            self.store,
            self.providers,
            default_registry(allow_private_fetch=config.allow_private_fetch, sandbox=sandbox),
            engine,
            cluster,
        )
        self.health = (
            health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        )
        self.port = 0
        self.metrics_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._probe: asyncio.Task[None] | None = None
        self._lock: int | None = None  # the data dir's lock (SQLite)

    async def start(self) -> None:
        config = self.config
        server = grpc.aio.server(
            interceptors=[ReflectionAuth(self.auth)],
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.keepalive_time_ms", int(config.keepalive_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_s * 1000)),
                ("grpc.max_connection_idle_ms", int(config.idle_timeout_s * 1000)),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                # One server per address: a second one fails to bind instead of sharing it.
                ("grpc.so_reuseport", 0),
                ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ],
        )
        session_service_pb2_grpc.add_SessionServiceServicer_to_server(
            SessionServicer(self.manager, self.auth), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
            pool=CommentedPool(),  # type: ignore[arg-type]  # the pool's interface it reads
        )
        credentials = self._credentials()
        socket_path = unix_socket_path(config.listen)
        if socket_path is not None:
            _take_socket(socket_path)
        # A unix socket is created 0600: only this user may connect.
        umask = os.umask(0o177) if socket_path is not None else None
        try:
            if credentials is None:
                self.port = server.add_insecure_port(config.listen)
            else:
                self.port = server.add_secure_port(config.listen, credentials)
        except RuntimeError:
            self.port = 0
        finally:
            if umask is not None:
                os.umask(umask)
        if self.port == 0:
            raise OSError(
                f"cannot listen on {config.listen}: address already in use (or not valid)"
            )
        # The address is ours: now the data, so a second server never recovers (ends) the
        # running turns of the first.
        try:
            self._lock = _lock_data_dir(config) if config.store == "" else None
            await self.store.open()
            await self.manager.start()
        except BaseException:
            await server.stop(None)
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None
            raise
        await server.start()
        self._grpc = server
        if config.security.insecure_no_auth and not self.auth.enabled:
            log.warning(
                "SERVING WITHOUT AUTHENTICATION on %s (--insecure-no-auth): anyone who reaches "
                "this address can run commands on this host",
                config.listen,
            )
        if config.metrics_listen:
            self.metrics_port = metrics.serve(config.metrics_listen)
            log.info("metrics on http://%s:%d/metrics", config.metrics_listen.rpartition(":")[0],
                     self.metrics_port)  # fmt: skip
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.SERVING)
        if self.manager.cluster is not None:
            self._probe = asyncio.create_task(self._follow_database(self.manager.cluster))
        where = (
            f"replica {self.manager.cluster.replica_id} on PostgreSQL"
            if self.manager.cluster is not None
            else f"data in {self.config.data_dir}"
        )
        log.info("kodad %s serving on %s (%s)", __version__, self.address, where)

    def _credentials(self) -> grpc.ServerCredentials | None:
        security = self.config.security
        if security.tls_cert is None or security.tls_key is None:
            return None
        key, cert = security.tls_key.read_bytes(), security.tls_cert.read_bytes()
        ca = security.client_ca.read_bytes() if security.client_ca is not None else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    def ready_line(self) -> dict[str, object]:
        """What `--ready-json` prints: how to reach this server, once it serves."""
        return {
            "listen": self.config.listen,
            "address": self.address,
            "port": self.port if unix_socket_path(self.config.listen) is None else 0,
            "pid": os.getpid(),
            "version": __version__,
            "token": self.config.security.launch_token,
        }

    async def _follow_database(self, cluster: Cluster) -> None:
        """A replica's health follows its database: NOT_SERVING while the database does not
        answer (a load balancer then sends calls to the other replicas), SERVING again once
        it does."""
        serving = True
        while True:
            await asyncio.sleep(cluster.lease_ttl_s / 3)
            try:
                await asyncio.wait_for(cluster.ping(), cluster.lease_ttl_s / 3)
                reachable = True
            except Exception as e:
                reachable = False
                if serving:
                    log.error("the database does not answer (%s): NOT_SERVING", e)
            if reachable != serving:
                serving = reachable
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if serving
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in ("", SERVICE_NAME):
                    await self._set_health(name, status)
                if serving:
                    log.info("the database answers again: SERVING")

    async def _set_health(self, name: str, status: int) -> None:
        result = self.health.set(name, status)
        if asyncio.iscoroutine(result):
            await result

    @property
    def address(self) -> str:
        """Where clients connect: host:port, or unix:///path for a unix socket."""
        socket_path = unix_socket_path(self.config.listen)
        if socket_path is not None:
            return f"unix://{socket_path}"
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self) -> None:
        """Stops taking calls, cancels running turns and stores them, then closes the store."""
        if self._grpc is None:
            return
        if self._probe is not None:
            self._probe.cancel()
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.manager.close()
        await self._grpc.stop(self.config.shutdown_grace_s)
        self._grpc = None
        await self.providers.aclose()
        await self.store.close()
        if self._lock is not None:
            os.close(self._lock)  # releases the data dir
            self._lock = None
        log.info("kodad stopped")

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# New container objects between two runs of the cyclic collector's youngest generation
# (Python's default is 700), then 10 of those for each older one.
GC_THRESHOLD = 10_000


def collect_less() -> None:
    """Tunes the cyclic garbage collector for a service that keeps many objects: what
    start-up made (modules, descriptors, tools) lives as long as the process, so it is
    frozen, out of the collector's walks; and the youngest generation is collected after
    GC_THRESHOLD new objects, not 700. Under 1,000 streams the collector took 1.3 s of the
    13 s of CPU, 0.3 s after. Cycles are still collected; at most that many objects wait."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


async def serve(config: ServerConfig) -> None:
    """Serves until SIGINT or SIGTERM, then shuts down cleanly; SIGHUP reloads the tokens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = _exit_with_parent(loop, stop) if config.exit_with_parent else None
    async with Server(config) as server:
        collect_less()
        loop.add_signal_handler(signal.SIGHUP, server.auth.reload)
        if config.ready_json:
            print(json.dumps(server.ready_line()), flush=True)
        await stop.wait()
    if watcher is not None:
        watcher.cancel()


def _exit_with_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> asyncio.Task[None]:
    """Stops (draining like SIGTERM) when stdin closes or the parent process dies."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the line above
        stop.set()
    reader = asyncio.StreamReader()

    async def watch_stdin() -> None:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        try:
            while await reader.read(65536):
                pass
        finally:
            transport.close()
        log.info("stdin closed: stopping")
        stop.set()

    return loop.create_task(watch_stdin(), name="exit with parent")
