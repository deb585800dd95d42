"""Fixtures of the PostgreSQL backend's tests: one real server per session (tests/pg/server.py),
and a fresh, empty database on it per test that asks for one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pg.server import PgServer, Unavailable, start_server

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running embedded PostgreSQL 18 + pgvector server; skips (saying why) where it cannot
    start."""
    try:
        with start_server() as server:
            yield server
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL server for the PostgreSQL backend's tests: {exc}")


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty database (with the vector extension) on the session's server."""
    import psycopg

    name = f"t{next(_names)}"
    admin = pg_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url
