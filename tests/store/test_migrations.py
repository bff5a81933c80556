"""The packaged alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from ingestd.errors import StorageError
from ingestd.store import head_revision, open_store, upgrade
from ingestd.store.engine import open_database
from ingestd.store.migrate import (
    alembic_config,
    current_revision,
    packaged_head,
    upgrade_database,
)
from ingestd.store.schema import Base, is_modelled
from tests.store.conftest import NOW

TABLES = {"feeds", "entries", "entry_revisions", "fetches", "page_failures"}


def test_upgrade_creates_every_table_at_head(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        assert current_revision(db) == head_revision() == "0005"
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        db.close()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": is_modelled}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.close()


def test_upgrade_twice_is_harmless_and_keeps_rows(db_url: str) -> None:
    upgrade(db_url)
    with open_store(db_url, migrate=False) as store:
        store.sync_feeds([("a", "https://a.example/feed", "feed", 60)], now=NOW)
    upgrade(db_url)
    with open_store(db_url) as store:
        assert [f.name for f in store.list_feeds()] == ["a"]


def test_downgrade_to_base_removes_the_tables(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        config = alembic_config()
        with db.writer.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with db.engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
    finally:
        db.close()


def set_schema_version(url: str, version: str) -> None:
    """Write ``version`` into alembic_version behind the store's back."""
    db = open_database(url)
    try:
        with db.writer.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    finally:
        db.close()


def test_database_from_a_newer_ingestd_is_refused(db_url: str) -> None:
    upgrade(db_url)
    set_schema_version(db_url, "9999")
    with pytest.raises(StorageError, match="cannot upgrade the schema.*9999"):
        upgrade(db_url)


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///relative.db") as store:
        assert store.target == str(tmp_path / "relative.db")
    assert (tmp_path / "relative.db").is_file()


def test_migrations_need_no_alembic_ini() -> None:
    config = alembic_config()
    assert config.config_file_name is None
    script_location = Path(config.get_main_option("script_location") or "")
    assert (script_location / "env.py").is_file()
    assert script_location.parent.name == "store"


def test_0001_database_upgrades_to_head_keeping_rows(tmp_path: Path) -> None:
    """An archive made before 0002 keeps its entries; they get no archive id."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = open_database(url)
    try:
        upgrade_database(db, "0001")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO feeds (id, name, url, original_url, format, enabled, "
                "interval_seconds, consecutive_errors, created_at) "
                "VALUES (1, 'a', 'https://a/', 'https://a/', 'feed', 1, 60, 0, "
                "'2026-01-01 00:00:00.000000')"
            )
            conn.exec_driver_sql(
                "INSERT INTO entries (id, feed_id, identity_key, published_is_fallback, "
                "first_seen_at, archive_path, file_id, current_revision, created_at) VALUES "
                "(1, 1, 'guid:x', 0, '2026-01-01 00:00:00.000000', 'articles/a/1048575.md', "
                "1048575, 1, '2026-01-01 00:00:00.000000')"
            )
        upgrade_database(db)
        assert current_revision(db) == head_revision()
    finally:
        db.close()
    with open_store(url) as store:
        assert dict(store.archive_paths_in_order("some-archive")) == {"articles/a/1048575.md": 1}
        assert store.archived_by_counts() == {"a": {"unknown": 1}}


def test_head_read_from_file_names_is_alembics_head() -> None:
    # Start-up compares the stored revision with this and loads alembic only on a mismatch.
    assert packaged_head() == head_revision()


@pytest.mark.slow
def test_alembic_is_loaded_only_when_the_schema_needs_work(tmp_path: Path) -> None:
    # Every `ingestd fetch` opens the store; loading alembic costs a fifth of a second.
    code = (
        "import sys\nfrom ingestd.store import open_store\n"
        "try:\n    open_store(sys.argv[1]).close()\nexcept Exception:\n    pass\n"
        "print('alembic' in sys.modules)"
    )

    def loads_alembic(url: str) -> bool:
        out = subprocess.run(
            [sys.executable, "-c", code, url], capture_output=True, text=True, check=True
        )
        return out.stdout.strip() == "True"

    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert loads_alembic(url)  # empty: migrated
    assert not loads_alembic(url)  # at head: nothing to do
    set_schema_version(url, "0001")
    assert loads_alembic(url)  # behind: alembic decides (and here refuses the odd schema)
