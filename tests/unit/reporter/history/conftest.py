"""Both history backends as real databases: an SQLite file and a PostgreSQL server on loopback.

Each PostgreSQL test gets a database of its own on the module's server, so tests never see each
other's samples.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from reporter.history.store import HistoryStore
from tests.unit.reporter.history.postgres_server import PostgresServer

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server."""
    name = f"history_{next(_databases)}"
    asyncio.run(_create_database(postgres_server.url, name))
    return postgres_server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's history lives, once per backend."""
    if request.param == "sqlite":
        return str(tmp_path / "history" / "samples.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(location: str) -> AsyncIterator[HistoryStore]:
    opened = HistoryStore.open(location)
    await opened.migrate()
    yield opened
    await opened.close()
