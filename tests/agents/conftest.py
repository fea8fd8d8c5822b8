"""Real servers for the agents' tests, started per session on free loopback ports: Redis (queues,
wiring) and PostgreSQL (the journal's second backend; a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg_support import PostgresServer, postgres_server
from tests.redis_support import redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield f"{url}/0"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres.database()
