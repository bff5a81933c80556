"""Store fixtures: every test runs on SQLite (in tmp_path) and on PostgreSQL.

Each PostgreSQL test gets its own schema (via ``search_path`` in the URL), dropped
afterwards, so tests never see each other's rows. Without a server the PostgreSQL
half skips, or fails under INGESTD_REQUIRE_POSTGRES=1 (set by .ci/run).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from ingestd.store import Store, open_store

PG_SERVER = os.environ.get("INGESTD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: The clock of every store test; nothing in the store may read the real one.
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        with psycopg.connect(PG_SERVER, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_SERVER}: {str(exc).strip().splitlines()[0]}"


def require_postgres() -> None:
    """Skip (or fail under INGESTD_REQUIRE_POSTGRES) when the server is unreachable."""
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("INGESTD_REQUIRE_POSTGRES"):
        pytest.fail(problem)
    pytest.skip(problem)


def pg_url(schema: str, server: str = PG_SERVER) -> str:
    """The store URL of one PostgreSQL schema on the test server."""
    base = server.replace("postgresql://", "postgresql+psycopg://", 1)
    # lock_timeout: a test that wrongly blocks on a row lock fails fast instead of hanging.
    options = quote(f"-csearch_path={schema} -clock_timeout=5s")
    return f"{base}{'&' if '?' in base else '?'}options={options}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema, dropped after the test."""
    require_postgres()
    schema = f"ingestd_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingestd.db'}"
    schema = request.getfixturevalue("pg_schema")
    return pg_url(schema)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    with open_store(db_url) as opened:
        yield opened


def pg_connect(db_url: str) -> psycopg.Connection:
    """A raw psycopg connection to the test schema behind ``db_url``."""
    return psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://", 1))
