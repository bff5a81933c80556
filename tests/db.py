"""Test databases on both backends: a SQLite file, or a fresh schema on the test server.

The suite runs on SQLite by default and on PostgreSQL with ``--db=postgresql`` (or
INGESTD_TEST_DB=postgresql); see ``database_url`` in tests/conftest.py. A PostgreSQL test
gets its own schema, selected through ``search_path`` in the URL and dropped afterwards,
so tests never see each other's rows. Without a server a PostgreSQL test skips, or fails
under INGESTD_REQUIRE_POSTGRES=1 (set by .ci/run).

The helpers here read a test database the same way on both backends, without ingestd.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

BACKENDS = ("sqlite", "postgresql")
PG_SERVER = os.environ.get("INGESTD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SQLITE_PREFIX = "sqlite:///"


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


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty schema on the test server, dropped (with its rows) on exit."""
    require_postgres()
    schema = f"ingestd_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            # Fail rather than hang should a daemon the test left behind hold a lock.
            admin.execute("SET lock_timeout = '20s'")
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pg_connect(url: str) -> psycopg.Connection[Any]:
    """A raw psycopg connection to the test schema behind a store ``url``."""
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))


def is_sqlite(url: str) -> bool:
    return url.startswith(SQLITE_PREFIX)


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    assert is_sqlite(url), url
    return Path(url[len(SQLITE_PREFIX) :])


def table_names(url: str) -> set[str]:
    """The tables of the test database; empty when nothing created it (no file, no table)."""
    if is_sqlite(url):
        path = sqlite_path(url)
        if not path.exists():
            return set()
        return {
            name for (name,) in query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    with pg_connect(url) as db:
        return {
            name
            for (name,) in db.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        }


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """All rows of one SQL statement (no parameters) on the test database."""
    if is_sqlite(url):
        db = sqlite3.connect(sqlite_path(url), timeout=10)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()
    with pg_connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def dump(url: str) -> bytes:
    """Everything the test database holds, as bytes to search: the files on SQLite
    (WAL and journal included), every row of every table on PostgreSQL."""
    if is_sqlite(url):
        path = sqlite_path(url)
        files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    rows = [query(url, f'SELECT * FROM "{table}"') for table in sorted(table_names(url))]
    return repr(rows).encode("utf-8", "backslashreplace")


def set_autovacuum(url: str, table: str, enabled: bool) -> None:
    """Turn autovacuum off for one table of the test schema (``enabled=False``), as a
    server without it, or give the table back to the server's setting."""
    change = "RESET (autovacuum_enabled)" if enabled else "SET (autovacuum_enabled = off)"
    with pg_connect(url) as connection:
        connection.execute(f"ALTER TABLE {table} {change}")
        connection.commit()


def vacuum_counts(url: str) -> dict[str, int]:
    """Table -> how many times it was vacuumed by hand (not by autovacuum)."""
    with pg_connect(url) as connection:
        rows = connection.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema()"
        ).fetchall()
    return {name: count for name, count in rows}
