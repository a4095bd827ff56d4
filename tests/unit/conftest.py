"""The `store` fixture: each store test runs against SQLite and against PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kodad.store import SqliteStore, Store
from kodad.store.postgres import PostgresStore
from tests.pg import PostgresCluster


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "db" / "kodad.db")
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        s = PostgresStore(await cluster.new_database())
    await s.open()
    yield s
    await s.close()
