"""Work-conserving scheduling (issue 19): freed slots are refilled at once, per-host limits
hold, a hanging server holds its slots no longer than its timeout, and long polls keep
their leases however many there are and however slow the database answers.

Driven by an injected clock and a stand-in poller where the timing is ours to choose;
the hanging-host test runs the real pipeline against a loopback server.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from ingestd import config
from ingestd.cli.runtime import open_runtime
from ingestd.cli.service import job_lookup
from ingestd.fetch import Slots
from ingestd.pipeline import FeedJob, PollResult
from ingestd.scheduler import Scheduler
from ingestd.store import FeedConfig, FeedRecord, Store, open_store
from tests.loopback import LoopbackServer, Request, Response
from tests.storehelp import set_feed_state
from tests.test_fetch_e2e import item, rss
from tests.test_scheduler import T0, Clock


@dataclass
class Held:
    """A poller whose polls of the hosts in ``hang`` wait for ``release``; others end at once,
    setting the next check an hour ahead. Counts polls in flight per host. ``slots`` are
    what a pipeline's fetcher would have: the scheduler's limits."""

    store: Store
    clock: Clock
    slots: Slots
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)

    async def poll(self, job: FeedJob) -> PollResult:
        host = job.record.url.split("/")[2]
        self.started.append(job.record.name)
        self.in_flight[host] += 1
        self.most[host] = max(self.most[host], self.in_flight[host])
        try:
            await asyncio.sleep(0)  # a real poll awaits something
            if host in self.hang:
                await self.release.wait()
            next_check = self.clock() + timedelta(hours=1)
            set_feed_state(self.store, job.record.id, next_check_at=next_check)
        finally:
            self.in_flight[host] -= 1
        return PollResult(feed=job.record.name, outcome="ok")


def job_for(record: FeedRecord) -> FeedJob:
    return FeedJob(record=record, spec=None, interval_seconds=3600)  # type: ignore[arg-type]


def feeds(store: Store, names_hosts: list[tuple[str, str]]) -> None:
    specs = [FeedConfig(name, f"https://{host}/{name}", "feed", 3600) for name, host in names_hosts]
    store.sync_feeds(specs, T0)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the loop until ``predicate`` holds (the polls are in-process tasks)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_freed_slot_is_refilled_without_waiting_for_a_tick(database_url: str) -> None:
    clock = Clock()
    with open_store(database_url) as store:
        feeds(store, [(f"f{i}", f"h{i}.example") for i in range(7)])
        poller = Held(store, clock, Slots(2))

        async def body() -> None:
            # A tick an hour long: only refills can start the polls after the first two.
            scheduler = Scheduler(
                store, poller, job_for, clock=clock, owner="me", tick_seconds=3600, refill=True
            )
            refills = asyncio.create_task(scheduler.run_refills())
            assert len(await scheduler.tick()) == 2
            await until(lambda: scheduler.polls_finished == 7)
            scheduler.stop()
            await refills
            assert await scheduler.wait_idle(5)

        asyncio.run(body())
        assert sorted(poller.started) == [f"f{i}" for i in range(7)]
        assert max(poller.most.values()) == 1
        assert store.active_leases(T0) == {}


def test_a_host_never_takes_more_than_its_share_of_the_slots(database_url: str) -> None:
    clock = Clock()
    with open_store(database_url) as store:
        hanging = [(f"slow{i}", "slow.example") for i in range(6)]
        quick = [(f"q{i}", f"q{i}.example") for i in range(12)]
        feeds(store, hanging + quick)
        poller = Held(store, clock, Slots(4, per_host=2), hang={"slow.example"})

        async def body() -> None:
            scheduler = Scheduler(
                store, poller, job_for, clock=clock, owner="me", tick_seconds=3600, refill=True
            )
            refills = asyncio.create_task(scheduler.run_refills())
            try:
                await scheduler.tick()
                # The hanging host holds two slots; the other two poll every other feed.
                await until(lambda: sum(n.startswith("q") for n in poller.started) == 12)
                assert poller.in_flight["slow.example"] == 2
                # Its other feeds are not held waiting: only its two polls hold leases.
                await until(lambda: len(store.active_leases(clock())) == 2)
                poller.release.set()  # the slow host answers: its other feeds get their turn
                await until(lambda: len(poller.started) == 18)
            finally:
                poller.release.set()
                scheduler.stop()
                await refills
                assert await scheduler.wait_idle(5)

        asyncio.run(body())
        assert poller.most["slow.example"] == 2
        assert sorted(poller.started) == sorted(n for n, _h in hanging + quick)
        assert store.active_leases(T0 + timedelta(days=1)) == {}


class SlowRenewals:
    """A store whose every lease renewal costs ``cost`` seconds of the injected clock, as a
    round trip does on a busy machine."""

    def __init__(self, store: Store, clock: Clock, cost: float) -> None:
        self.store, self.clock, self.cost = store, clock, cost
        self.calls = 0

    def renew_leases(self, *args: object) -> set[int]:
        self.calls += 1
        self.clock.advance(seconds=self.cost)
        return self.store.renew_leases(*args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_many_long_polls_keep_their_leases_on_a_slow_database(database_url: str) -> None:
    """The multi-daemon flake: 30 polls outlasting a 4 s lease, renewals costing 0.15 s
    each. Renewed one by one, the round outlasted the lease (30 x 0.15 s), the leases ran
    out under polls in flight and another daemon took the feeds; one statement renews them
    all, once per half lease."""
    clock = Clock()
    with open_store(database_url) as store:
        feeds(store, [(f"f{i}", f"h{i}.example") for i in range(30)])
        slow = SlowRenewals(store, clock, cost=0.15)
        poller = Held(store, clock, Slots(30), hang={f"h{i}.example" for i in range(30)})

        async def body() -> None:
            scheduler = Scheduler(
                slow, poller, job_for, clock=clock, owner="a", lease_seconds=4,  # type: ignore[arg-type]
            )  # fmt: skip
            assert len(await scheduler.tick()) == 30
            for _ in range(100):  # 20 s of 0.2 s ticks
                clock.advance(seconds=0.2)
                await scheduler.tick()
                assert store.lease_due_feeds("b", clock(), 4) == [], "a lease ran out"
            poller.release.set()
            assert await scheduler.wait_idle(5)

        asyncio.run(body())
        # About one renewal per half lease (20 s / 2 s), not one per feed per tick.
        assert slow.calls <= 12
        assert store.active_leases(clock()) == {}


# --- a hanging server, the real pipeline ----------------------------------------------------

FEEDS = 40
HANGING = 2  # 5 %
TIMEOUT = 1.0


@pytest.mark.slow
def test_start_delay_stays_low_while_some_feeds_hang(tmp_path: Path) -> None:
    """Issue 19 Must show: start delay p99 under 2 s while 5 % of feeds hang until their
    timeout (1 s here), every feed due every second."""
    stop_hanging = threading.Event()

    def hang(_request: Request) -> Response:
        stop_hanging.wait(TIMEOUT * 3)  # longer than the fetch timeout
        return Response(200, {"Content-Type": "application/rss+xml"}, rss(""))

    body = rss(item("one", "http://x.example/1", "1"))
    with LoopbackServer() as server:
        for i in range(FEEDS):
            route = hang if i < HANGING else (200, {"Content-Type": "application/rss+xml"}, body)
            server.route(f"/f{i}.xml", route)
        listed = "".join(
            f'[[feeds]]\nname = "f{i}"\nurl = "{server.url(f"/f{i}.xml")}"\ninterval = "1s"\n'
            for i in range(FEEDS)
        )
        path = tmp_path / "ingestd.toml"
        path.write_text(
            f'database = "sqlite:///{tmp_path / "state.db"}"\narchive_dir = "archive"\n'
            f"[fetch]\ntimeout = {TIMEOUT}\nconcurrency = 8\nper_host = 8\n"
            'allow_private = ["127.0.0.1"]\n'
            '[schedule]\nfloor = "1s"\njitter = 0\ntick = "5s"\n' + listed,
            encoding="utf-8",
        )
        runtime = open_runtime(config.load(path))
        try:
            scheduler = asyncio.run(_run_for(runtime, seconds=4.0))
        finally:
            stop_hanging.set()
            runtime.close()
        hits = server.hits
    delays = sorted(scheduler.delays)
    p99 = delays[int(len(delays) * 0.99) - 1]
    print(
        f"\nstart delay: {len(delays)} polls, p50 {statistics.median(delays):.3f}s, p99 {p99:.3f}s"
    )
    assert p99 < 2.0
    assert all(hits[f"/f{i}.xml"] >= 1 for i in range(HANGING))  # the hanging feeds were tried
    # The others were polled about every second, though 2 of the 8 slots hung for 1 s at a
    # time (a busy machine may time one out now and then: it backs off, and counts less).
    others = [hits[f"/f{i}.xml"] for i in range(HANGING, FEEDS)]
    assert min(others) >= 2 and sum(others) >= 3 * len(others)


async def _run_for(runtime, seconds: float) -> Scheduler:  # type: ignore[no-untyped-def]
    async with runtime.make_fetcher() as fetcher:
        scheduler = Scheduler(
            runtime.store, runtime.make_pipeline(fetcher), job_lookup(lambda: runtime.settings),
            tick_seconds=5, refill=True,
        )  # fmt: skip
        assert (scheduler.concurrency, scheduler.per_host) == (8, 8)  # the [fetch] table's
        scheduler.start()
        await asyncio.sleep(seconds)  # the daemon runs on the real clock for a while
        await scheduler.drain(grace=TIMEOUT * 2)
        return scheduler


def test_a_poll_that_outlived_its_lease_is_not_started_twice(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    with open_store(database_url) as store:
        feeds(store, [("slow", "slow.example"), ("quick", "quick.example")])
        poller = Held(store, clock, Slots(4), hang={"slow.example"})
        # Renewals fail (the database refuses them): the slow poll's lease runs out.
        monkeypatch.setattr(store, "renew_leases", lambda *args: set())

        async def body() -> None:
            scheduler = Scheduler(
                store, poller, job_for, clock=clock, owner="me", lease_seconds=10, tick_seconds=3600
            )
            try:
                await scheduler.tick()
                await until(lambda: len(poller.started) == 2)
                clock.advance(seconds=60)  # the lease ran out; "slow" is due again
                assert await scheduler.tick() == []
                assert poller.started.count("slow") == 1
                assert scheduler.running == 1
            finally:
                poller.release.set()
                scheduler.stop()
                assert await scheduler.wait_idle(5)

        asyncio.run(body())
