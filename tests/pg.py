"""A throw-away PostgreSQL cluster on loopback for the tests, from Debian's packages
(`make test` installs them with tools/postgres.sh)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg


def bin_dir() -> Path:
    """Where initdb and pg_ctl are: Debian's newest version, else PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: run tools/postgres.sh")
    return Path(initdb).resolve().parent


class PostgresCluster:
    """initdb + pg_ctl in a temporary directory; the postgres user runs it when we are root
    (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kodad-pg-"))
        self.data = self.root / "data"
        self.port = 0

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        bins = bin_dir()
        self._run(
            str(bins / "initdb"), "-D", str(self.data), "-U", "kodad", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        with socket.socket() as s:  # a free port (PostgreSQL cannot report one it chose)
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.start_server()

    def start_server(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
            " -c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        self._run(
            str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.root / "log"), "-w", "start",
        )  # fmt: skip

    def stop_server(self) -> None:
        """Stops the server (its clients' connections break); the data stays."""
        self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://kodad@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """A fresh, empty database; returns its DSN."""
        name = "t_" + uuid.uuid4().hex[:12]
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)
