"""The packaged alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from ingestd.errors import StorageError
from ingestd.store import head_revision, open_store, upgrade
from ingestd.store.engine import open_database
from ingestd.store.migrate import alembic_config, current_revision
from ingestd.store.schema import Base
from tests.store.conftest import NOW

TABLES = {"feeds", "entries", "entry_revisions", "fetches"}


def test_upgrade_creates_every_table_at_head(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        assert current_revision(db) == head_revision() == "0001"
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        db.close()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
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


def test_database_from_a_newer_ingestd_is_refused(db_url: str) -> None:
    upgrade(db_url)
    db = open_database(db_url)
    try:
        with db.writer.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        db.close()
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
