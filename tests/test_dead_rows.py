"""PostgreSQL without autovacuum (issue 19): ingestd vacuums its own tables when their
dead rows pass the server's autovacuum threshold, and says so; SQLite has nothing to do."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from ingestd.errors import StorageError
from ingestd.history import vacuum_when_off
from ingestd.store import FeedConfig, open_store
from tests.db import fresh_schema, pg_connect, pg_url, set_autovacuum, vacuum_counts
from tests.test_scheduler import T0


def _churn(url: str, updates: int) -> None:
    """``updates`` committed updates of one feed row: as many dead row versions (the
    indexed column changes, as a poll's does, so page pruning cannot take them)."""
    with pg_connect(url) as connection:
        connection.autocommit = True
        for _ in range(updates):
            connection.execute(
                "UPDATE feeds SET next_check_at = next_check_at + interval '1 second'"
            )
        connection.execute("SELECT pg_stat_force_next_flush()")


def test_postgresql_tables_without_autovacuum_are_vacuumed_past_the_threshold() -> None:
    with fresh_schema() as schema:
        url = pg_url(schema)
        with open_store(url) as store:
            store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], T0)
            set_autovacuum(url, "feeds", enabled=False)
            with pg_connect(url) as connection:
                server_on = connection.execute("SHOW autovacuum").fetchone() == ("on",)
            left = store.tables_without_autovacuum()
            assert "feeds" in left
            # The others are listed exactly when the server's autovacuum is off.
            assert ("fetches" in left) is not server_on
            _churn(url, 20)  # under 50 + 0.2 x rows: autovacuum would wait, so do we
            assert store.vacuum_dead_rows(left) == []
            _churn(url, 300)
            done: list[str] = []
            deadline = time.monotonic() + 10  # statistics reach the server within a second
            while not done and time.monotonic() < deadline:
                done = store.vacuum_dead_rows(left)
                time.sleep(0.2)
            assert "feeds" in done
            assert vacuum_counts(url)["feeds"] == 1
            assert store.vacuum_dead_rows(left) == []  # nothing dead is left over the line
            set_autovacuum(url, "feeds", enabled=True)
            assert ("feeds" in store.tables_without_autovacuum()) is not server_on


def test_db_prune_vacuum_vacuums_every_table_on_postgresql() -> None:
    with fresh_schema() as schema:
        url = pg_url(schema)
        with open_store(url) as store:
            store.vacuum()
        counts = vacuum_counts(url)
    # Every table of ingestd's, the search index's too; Alembic's bookkeeping is not one.
    assert "entry_search" in counts and "feeds" in counts
    assert {name for name, n in counts.items() if n == 1} == set(counts) - {"alembic_version"}


def test_sqlite_has_no_dead_rows_to_look_after(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert store.tables_without_autovacuum() == []
        assert store.vacuum_dead_rows(["feeds"]) == []


class Scripted:
    """A store whose autovacuum coverage changes from one look to the next."""

    def __init__(self, looks: list[list[str] | Exception]) -> None:
        self.looks = looks
        self.vacuums = 0

    def tables_without_autovacuum(self) -> list[str]:
        look = self.looks.pop(0) if len(self.looks) > 1 else self.looks[0]
        if isinstance(look, Exception):
            raise look
        return look

    def vacuum_dead_rows(self, tables: list[str]) -> list[str]:
        self.vacuums += 1
        return tables[:1]


def test_the_daemon_task_says_what_it_looks_after_and_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Scripted([[], ["feeds", "fetches"], ["feeds", "fetches"],
                      StorageError("server gone"), ["feeds", "fetches"], []])  # fmt: skip

    async def main() -> None:
        task = asyncio.create_task(vacuum_when_off(store, every=0.01))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        task.cancel()

    with caplog.at_level(logging.INFO, logger="ingestd.history"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    warned = [m for m in messages if m.startswith("PostgreSQL autovacuum is off for")]
    # Once when coverage changed, not at every look; the error did not stop the task.
    assert warned == [warned[0]] and "feeds, fetches" in warned[0]
    assert any("server gone" in m for m in messages)
    assert "PostgreSQL autovacuum covers ingestd's tables again" in messages
    assert store.vacuums == 3  # only while some table was left to it
