"""Stopping the scheduler in the middle of a tick hands back what that tick leased."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime

import pytest

from ingestd.fetch import FetchLimits, Slots
from ingestd.pipeline import FeedJob, PollResult
from ingestd.scheduler import Scheduler
from ingestd.store import FeedConfig, FeedRecord, Store, open_store

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class SlowLeases:
    """A store whose leasing blocks until the test lets it go on."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def lease_due_feeds(self, *args: object, **kwargs: object) -> list[FeedRecord]:
        self.entered.set()
        self.go_on.wait(10)
        return self.store.lease_due_feeds(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


class NeverPolled:
    slots = Slots(FetchLimits.concurrency)

    async def poll(self, job: FeedJob) -> PollResult:
        raise AssertionError("no poll may start once the tick is cancelled")


def test_cancelled_tick_returns_its_leases(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig(n, f"https://{n}.example/", "feed", 60) for n in "ab"], NOW)
        slow = SlowLeases(store)
        scheduler = Scheduler(
            slow,
            NeverPolled(),
            lambda r: None,  # type: ignore[arg-type]
            clock=lambda: NOW,
            owner="me:1:x",
        )

        async def go() -> list[object]:
            tick = asyncio.create_task(scheduler.tick())
            await asyncio.to_thread(slow.entered.wait, 10)
            tick.cancel()
            await asyncio.sleep(0)  # let the cancellation reach the tick's await
            slow.go_on.set()
            return list(await tick)

        assert asyncio.run(go()) == []
        assert store.active_leases(NOW) == {}


def test_stopping_just_after_a_tick_was_submitted_is_quiet(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # APScheduler's shutdown cancels the jobs it has submitted; a tick cancelled before
    # its first step cannot catch that, and APScheduler logged it with a traceback.
    caplog.set_level(logging.INFO)
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], NOW)

        async def go(steps: int) -> int:
            scheduler = Scheduler(
                store,
                NeverPolled(),
                lambda r: None,  # type: ignore[arg-type]
                owner="me:1:x",
                tick_seconds=0.01,
            )
            scheduler.start()
            for _ in range(steps):
                await asyncio.sleep(0)
            drained = await scheduler.drain(grace=5)
            assert drained.cancelled == 0
            return scheduler.polls_started

        for steps in range(6):  # stop at each point of the first tick's start
            assert asyncio.run(go(steps)) == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    assert store.active_leases(NOW) == {}
