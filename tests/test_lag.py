"""Lag you can see (issue 19): how late the oldest due feed is, the start delay of recent
polls, and a warning with the reason when the daemon stays behind its schedule."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestd.cli.report import schedule_line, schedule_summary
from ingestd.fetch import Slots
from ingestd.lag import BEHIND_TICKS
from ingestd.metrics import Metrics
from ingestd.scheduler import Scheduler
from ingestd.store import FeedConfig, FetchAttempt, open_store
from ingestd.upkeep import Load, behind_reason, percentile
from tests.test_cli_commands import run
from tests.test_scheduler import T0, Clock
from tests.test_scheduler_refill import Held, feeds, job_for


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile(reversed(values), 1.0) == 100
    assert percentile([3.0], 0.99) == 3.0 and percentile([], 0.5) is None


def test_behind_reason_names_what_held_the_feeds_back() -> None:
    assert behind_reason(None, Load(0, 4)) is None
    assert behind_reason(1.5, Load(4, 4)) is None  # within the allowance
    assert "all 4 slots busy" in (behind_reason(30, Load(4, 4)) or "")
    assert "per-host limit: a.example" in (behind_reason(30, Load(2, 4, ("a.example",))) or "")
    assert "database slow" in (behind_reason(30, Load(0, 4, lease_seconds=2.5)) or "")
    assert "CPU-bound" in (behind_reason(30, Load(1, 4)) or "")


def test_a_daemon_behind_for_several_ticks_says_why_and_when_it_caught_up(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingestd.scheduler")
    clock = Clock()
    with open_store(database_url) as store:
        feeds(store, [(f"f{i}", f"h{i}.example") for i in range(3)])
        poller = Held(store, clock, Slots(1), hang={"h0.example", "h1.example", "h2.example"})

        async def body() -> None:
            scheduler = Scheduler(store, poller, job_for, clock=clock, owner="me")
            for _ in range(BEHIND_TICKS):
                clock.advance(seconds=5)
                await scheduler.tick()
            lag = scheduler.lag()
            assert lag.due == 2 and lag.lateness == 15.0 and lag.running == 1
            assert lag.behind is not None and "all 1 slots busy" in lag.behind
            poller.release.set()
            while scheduler.polls_finished < 3:  # each tick starts the next feed
                await scheduler.wait_idle(5)
                await scheduler.tick()
            await scheduler.wait_idle(5)
            await scheduler.tick()
            assert scheduler.lag().behind is None and scheduler.lag().due == 0

        asyncio.run(body())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once, not at every tick
    assert warnings[0].startswith(f"behind schedule for {BEHIND_TICKS} ticks: 2 feeds due")
    assert "the oldest for 15.0 s" in warnings[0] and "all 1 slots busy" in warnings[0]
    assert any("caught up" in r.getMessage() for r in caplog.records)


def test_status_shows_the_oldest_due_feed_and_start_delays(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig(n, f"https://{n}.example/", "feed", 60) for n in "abc"], T0)
        ids = {f.name: f.id for f in store.list_feeds()}
        # Polls that started 0.1 ... 5.0 s after their feed fell due, and one early
        # (a one-off fetch of a feed not due yet), which is no delay.
        polls = []
        for n in range(1, 51):
            due = T0 + timedelta(minutes=n)
            started = due + timedelta(seconds=n / 10)
            attempt = FetchAttempt(started, 10, 200, "ok", 100, 0, None, due)
            polls.append((ids["a"], attempt, {"next_check_at": T0 + timedelta(hours=2)}))
        early = FetchAttempt(T0, 10, 200, "ok", 100, 0, None, T0 + timedelta(hours=1))
        polls.append((ids["b"], early, {"next_check_at": T0 + timedelta(hours=2)}))
        store.record_polls(polls)
        now = T0 + timedelta(hours=2, seconds=30)
        summary = schedule_summary(store, now)
    # Feed c never polled: due since T0 (added then); a and b due 30 s ago.
    assert summary["due_waiting"] == 3 and summary["oldest_due_seconds"] == 7230
    assert summary["polls_measured"] == 50
    assert summary["start_delay_p50"] == 2.5 and summary["start_delay_p99"] == 5.0
    assert schedule_line(summary) == (
        "schedule: 3 feeds due, the oldest for 7230 s; start delay p50 2.5 s, p99 5 s "
        "over the last 50 polls"
    )


def test_status_json_carries_the_schedule(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ingestd.toml"
    config.write_text(
        f'database = "{database_url}"\n[[feeds]]\nname = "a"\nurl = "https://a.example/"\n',
        encoding="utf-8",
    )
    with open_store(database_url) as store:  # as a daemon started a minute ago left it
        added = datetime.now(UTC) - timedelta(minutes=1)
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], added)
    code, out, _ = run(capsys, "status", "--config", str(config), "--json")
    assert code == 0
    schedule = json.loads(out)["schedule"]
    assert schedule["due_waiting"] == 1 and schedule["polls_measured"] == 0
    assert 60 <= schedule["oldest_due_seconds"] < 120
    code, out, err = run(capsys, "status", "--config", str(config))
    assert code == 0 and "schedule: 1 feeds due" in err  # beside the tab-separated rows


def test_metrics_carry_the_lag() -> None:
    metrics = Metrics()
    metrics.set_lag(12.5, 7, 0.2, 1.9, 32, 32, True)
    body = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
    }
    assert body[("ingestd_schedule_lateness_seconds", ())] == 12.5
    assert body[("ingestd_feeds_due_waiting", ())] == 7
    assert body[("ingestd_start_delay_seconds", (("quantile", "0.99"),))] == 1.9
    assert body[("ingestd_slots_busy", ())] == 32 and body[("ingestd_behind_schedule", ())] == 1
