"""Store fixtures: every test runs on SQLite (in tmp_path) and on PostgreSQL, whatever --db.

Each PostgreSQL test gets its own schema (via ``search_path`` in the URL), dropped
afterwards, so tests never see each other's rows. Without a server the PostgreSQL
half skips, or fails under INGESTD_REQUIRE_POSTGRES=1 (set by .ci/run). The helpers
live in tests/db.py, shared with the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd.store import Store, open_store
from tests.db import PG_SERVER, fresh_schema, pg_connect, pg_url, require_postgres

__all__ = ["NOW", "PG_SERVER", "pg_connect", "pg_url", "require_postgres"]

#: The clock of every store test; nothing in the store may read the real one.
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema, dropped after the test."""
    with fresh_schema() as schema:
        yield schema


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
