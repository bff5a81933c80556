"""Engine setup per backend and the StorageError boundary."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from ingestd.errors import StorageError
from ingestd.store import NewEntry, Store, open_store
from tests.store.conftest import NOW, pg_url
from tests.storehelp import feed_named, set_feed_state

#: An entry whose feed does not exist.
ORPHAN = NewEntry("k", "h", None, None, None, NOW, False, "articles/x/1.md", 1)

FEEDS = [("a", "https://a.example/feed", "feed", 1800)]


def _pragma(store: Store, name: str) -> object:
    with store._db.engine.connect() as connection:
        return connection.execute(text(f"PRAGMA {name}")).scalar()


@pytest.mark.sqlite_only
def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=1234) as store:
        assert _pragma(store, "journal_mode") == "wal"
        assert _pragma(store, "busy_timeout") == 1234
        assert _pragma(store, "foreign_keys") == 1


def test_postgresql_uses_psycopg3(pg_schema: str) -> None:
    with open_store(pg_url(pg_schema)) as store:
        assert store._db.dialect == "postgresql"
        assert store._db.engine.dialect.driver == "psycopg"


def test_plain_postgresql_url_gets_the_psycopg_driver() -> None:
    from ingestd.store.engine import open_database

    db = open_database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert db.engine.dialect.driver == "psycopg"
    finally:
        db.close()


@pytest.mark.sqlite_only
def test_locked_sqlite_database_names_the_lock_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with open_store(f"sqlite:///{path}", busy_timeout_ms=100) as store:
        store.sync_feeds(FEEDS, now=NOW)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        try:
            with pytest.raises(StorageError) as caught:
                store.disable_feed("a", "test")
            # WAL: readers carry on while another connection writes.
            feed = feed_named(store, "a")
        finally:
            other.execute("ROLLBACK")
            other.close()
    assert str(caught.value) == f"database is locked (waited 0.1 s): {path}"
    assert isinstance(caught.value.__cause__, Exception)
    assert feed is not None and feed.enabled


@pytest.mark.sqlite_only
def test_missing_sqlite_folder_is_created_and_an_impossible_one_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "folder" / "x.db"
    open_store(f"sqlite:///{path}").close()
    assert path.is_file()
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(StorageError, match="cannot create the folder .*blocked/db of the SQLite"):
        open_store(f"sqlite:///{tmp_path / 'blocked' / 'db' / 'x.db'}")


def test_unreachable_postgresql_names_the_server_without_password() -> None:
    with pytest.raises(StorageError) as caught:
        open_store("postgresql+psycopg://me:secret@127.0.0.1:1/db")
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "secret" not in message
    assert "\n" not in message


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StorageError, match="unsupported database"):
        open_store("mysql://localhost/db")
    with pytest.raises(StorageError, match="not a database URL"):
        open_store("::not a url::")


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StorageError, match="constraint violated"):
        store.add_entry_groups([(999, [ORPHAN], NOW)])


def test_naive_datetime_is_rejected(store: Store) -> None:
    with pytest.raises(StorageError, match="naive datetime"):
        store.sync_feeds(FEEDS, now=datetime(2026, 1, 1, 12, 0))
    assert store.list_feeds() == []


def test_datetimes_come_back_timezone_aware_utc(store: Store) -> None:
    plus8 = timezone(timedelta(hours=8))
    local = datetime(2026, 3, 1, 20, 0, 0, 123456, tzinfo=plus8)
    store.sync_feeds(FEEDS, now=local)
    feed = feed_named(store, "a")
    assert feed is not None
    assert feed.created_at == local
    assert feed.created_at.utcoffset() == timedelta(0)
    assert feed.created_at.isoformat() == "2026-03-01T12:00:00.123456+00:00"
    set_feed_state(store, feed.id, next_check_at=NOW, failing_since=None)
    again = feed_named(store, "a")
    assert again is not None and again.next_check_at == NOW
    assert again.next_check_at is not None and again.next_check_at.tzinfo is not None
