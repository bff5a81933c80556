"""Bounded history (issue 19): the fetch log pruned as ``[history]`` says, in small
transactions, SQLite's space given back, ``ingestd db stats`` and ``ingestd db prune``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from ingestd import config
from ingestd.errors import ConfigError
from ingestd.history import Pruner
from ingestd.store import FeedConfig, FetchAttempt, Pruned, Store, open_store
from ingestd.upkeep import Retention
from tests.store.test_leasing import statements_during
from tests.storehelp import fetch_log
from tests.test_cli_commands import run
from tests.test_scheduler import T0, Clock


class Counted:
    """A store that remembers what each pruning transaction deleted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.steps: list[int] = []

    def prune_fetches(self, *args: object, **options: object) -> Pruned:
        pruned = self.store.prune_fetches(*args, **options)  # type: ignore[arg-type]
        self.steps.append(pruned.deleted)
        return pruned

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def polls(
    ids: list[int], at: list, error: str | None = None
) -> list[tuple[int, FetchAttempt, dict]]:  # type: ignore[type-arg]
    return [
        (feed_id, FetchAttempt(moment, 20, 304, "not_modified", 0, 0, error, moment), {})
        for moment in at
        for feed_id in ids
    ]


def count(store: Store, feed_id: int | None = None) -> int:
    ids = [f.id for f in store.list_feeds()] if feed_id is None else [feed_id]
    return sum(len(fetch_log(store, i, limit=100_000)) for i in ids)


@pytest.mark.slow
def test_a_simulated_year_of_polls_keeps_the_fetch_log_bounded(database_url: str) -> None:
    """Five feeds polled every 6 hours and one weekly feed, for 52 weeks, pruned once a
    simulated week with [history] keep = 7d, keep_last = 10: after each prune the log
    holds a week of polls (and the weekly feed's last ten), not a year's."""
    clock = Clock()
    retention = Retention(keep=7 * 86400, keep_last=10)
    with open_store(database_url) as store:
        names = [f"f{i}" for i in range(5)] + ["weekly"]
        store.sync_feeds([FeedConfig(n, f"https://{n}.example/", "feed", 21600) for n in names], T0)
        ids = {f.name: f.id for f in store.list_feeds()}
        counted = Counted(store)
        pruner = Pruner(counted, retention, clock, feeds_per_step=2, rows_per_step=15)  # type: ignore[arg-type]
        busy = [ids[f"f{i}"] for i in range(5)]
        after_prunes = []
        for week in range(52):
            start = T0 + timedelta(weeks=week)
            store.record_polls(polls(busy, [start + timedelta(hours=6 * q) for q in range(28)]))
            store.record_polls(polls([ids["weekly"]], [start]))
            clock.now = start + timedelta(days=7)  # the week's polls are all within 7 days
            pruner.prune_pass()
            after_prunes.append(count(store))
        assert count(store, ids["f0"]) == 28  # the polls of the last 7 days
        weekly = fetch_log(store, ids["weekly"], limit=100)
        assert len(weekly) == 10  # older than a week, but its newest ten are kept
        assert weekly[-1].started_at == T0 + timedelta(weeks=42)
    # Bounded from the tenth week on (the weekly feed's ten fill up); unpruned, the log
    # would end at 7,332 rows.
    assert after_prunes[9:] == [most_kept(5, 28, 10)] * 43
    assert max(after_prunes) == most_kept(5, 28, 10)
    # Small transactions: none deleted more than the batch it was given.
    assert max(counted.steps) == 15 and sum(counted.steps) == 52 * 141 - most_kept(5, 28, 10)


def most_kept(feeds: int, per_week: int, keep_last: int) -> int:
    """Rows left after a prune: the last week of the busy feeds, and the weekly feed's
    ``keep_last``."""
    return feeds * per_week + keep_last


@pytest.mark.slow
def test_sqlite_gives_the_space_back(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], T0)
        [feed] = store.list_feeds()
        moments = [T0 + timedelta(seconds=s) for s in range(20_000)]
        store.record_polls(polls([feed.id], moments, error="x" * 200))
        grown, _free = store.database_bytes()
        clock = Clock(T0 + timedelta(days=30))
        report = Pruner(store, Retention(keep=86400, keep_last=10), clock).prune_pass()
        size, free = store.database_bytes()
    assert report.deleted == 20_000 - 10 and report.steps >= 20  # 1,000 rows at a time
    assert report.bytes_freed > 4_000_000 and free == 0
    assert size < grown / 4


def write_config(tmp_path: Path, database_url: str, history: str = "") -> Path:
    path = tmp_path / "ingestd.toml"
    path.write_text(
        f'database = "{database_url}"\n{history}[[feeds]]\nname = "a"\nurl = "https://a.example/"\n',
        encoding="utf-8",
    )
    return path


def test_db_stats_and_db_prune(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, database_url, '[history]\nkeep = "1d"\nkeep_last = 3\n')
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], T0)
        [feed] = store.list_feeds()
        store.record_polls(polls([feed.id], [T0 + timedelta(minutes=m) for m in range(50)]))
    code, out, _ = run(capsys, "db", "stats", "--config", str(path), "--json")
    stats = json.loads(out)
    tables = {t["table"]: t for t in stats["tables"]}
    assert code == 0 and tables["fetches"]["rows"] == 50 and tables["feeds"]["rows"] == 1
    assert stats["bytes"] > 0
    if "sqlite" in database_url:
        assert tables["fetches"]["bytes"] > 0
    code, out, _ = run(capsys, "db", "prune", "--config", str(path), "--json")
    pruned = json.loads(out)
    # T0 is years ago: only the newest three of the feed stay.
    assert code == 0 and pruned["pruned"]["deleted"] == 47
    assert {t["table"]: t["rows"] for t in pruned["tables"]}["fetches"] == 3
    code, out, _ = run(capsys, "db", "prune", "--vacuum", "--config", str(path))
    assert code == 0 and out.startswith("pruned 0 fetch log rows in 1 transactions")
    assert "fetches" in out and "3 rows" in out


def test_history_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db")
    defaults = config.load(path).history
    assert (defaults.keep, defaults.keep_last, defaults.prune_every) == (7 * 86400, 10, 600)
    path = write_config(
        tmp_path, "sqlite:///x.db", '[history]\nkeep = "30d"\nkeep_last = 0\nprune_every = "1h"\n'
    )
    chosen = config.load(path).history
    assert (chosen.keep, chosen.keep_last, chosen.prune_every) == (30 * 86400, 0, 3600)
    path = write_config(tmp_path, "sqlite:///x.db", "[history]\nkeep_days = 3\n")
    with pytest.raises(ConfigError, match=r"line 3: history.keep_days: unknown key"):
        config.load(path)


def test_the_daemons_pruning_task_prunes_in_steps_and_keeps_going(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="ingestd.history")
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], T0)
        [feed] = store.list_feeds()
        store.record_polls(polls([feed.id], [T0 + timedelta(minutes=m) for m in range(40)]))
        clock = Clock(T0 + timedelta(days=30))
        pruner = Pruner(store, Retention(keep=86400, keep_last=5), clock, rows_per_step=10)

        def pruned() -> bool:
            return any("pruned" in r.getMessage() for r in caplog.records)

        run_pruner_until(pruner, 3600, pruned, "not pruned")
        assert count(store) == 5
    assert any("35 fetch log rows pruned in 4 steps" in r.getMessage() for r in caplog.records)


def run_pruner_until(pruner: Pruner, every: float, done: Callable[[], bool], what: str) -> None:
    """The daemon's pruning task until ``done()`` (within 10 s, else fails with ``what``),
    then cancelled as the daemon cancels it."""

    async def body() -> None:
        task = asyncio.create_task(pruner.run(every=every, pause=0))
        deadline = asyncio.get_running_loop().time() + 10
        while not done():
            assert asyncio.get_running_loop().time() < deadline, what
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(body())


def test_the_pruning_task_gives_freed_memory_back_after_each_pass(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestd import history

    passes: list[int] = []
    monkeypatch.setattr(history.memory, "give_back", lambda: passes.append(1) or True)
    with open_store(database_url) as store:
        pruner = Pruner(store, Retention(keep=86400, keep_last=5), Clock(T0))

        run_pruner_until(pruner, 0, lambda: len(passes) >= 3, "memory not given back")


def test_a_pruning_step_is_two_statements_however_many_feeds_it_sees(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig(f"f{i}", f"https://f{i}.example/", "feed", 60)
                          for i in range(50)], T0)  # fmt: skip
        ids = [f.id for f in store.list_feeds()]
        store.record_polls(polls(ids, [T0 + timedelta(minutes=m) for m in range(6)]))
        pruned: list[Pruned] = []
        sent = statements_during(
            store, lambda: pruned.append(store.prune_fetches(T0 + timedelta(days=1), 2))
        )
    # A statement or two per feed cost a pass over 1,000 feeds two seconds of CPU.
    assert len(sent) == 2, sent
    assert pruned == [Pruned(50 * 4, 0, done=True)]
