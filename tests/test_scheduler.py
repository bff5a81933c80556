"""The scheduler's tick with an injected clock: what is due, leases, concurrency, shutdown.

Nothing here sleeps to wait for state: ticks are called directly and polls awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from ingestd import config
from ingestd.cli.runtime import Runtime, open_runtime
from ingestd.cli.service import job_lookup
from ingestd.fetch import FetchLimits, Slots
from ingestd.pipeline import FeedJob, PollResult
from ingestd.scheduler import Scheduler, make_owner
from ingestd.store import FeedRecord, Store
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import due_feeds, feed_named, set_feed_state
from tests.test_fetch_e2e import feed_toml, item, rss

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T = TypeVar("T")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def write_config(root: Path, database_url: str, feeds: str, fetch: str = "") -> config.Settings:
    path = root / "ingestd.toml"
    path.write_text(
        f'database = "{database_url}"\narchive_dir = "archive"\n'
        f'[fetch]\ntimeout = 10\nallow_private = ["127.0.0.1"]\n{fetch}'
        f"[schedule]\njitter = 0.1\n{feeds}",
        encoding="utf-8",
    )
    return config.load(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime_for(
    tmp_path: Path, database_url: str, clock: Clock
) -> Iterator[Callable[..., Runtime]]:
    opened: list[Runtime] = []

    def make(feeds: str, fetch: str = "") -> Runtime:
        runtime = open_runtime(write_config(tmp_path, database_url, feeds, fetch), clock=clock)
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        runtime.close()


def with_scheduler(
    runtime: Runtime, clock: Clock, body: Callable[[Scheduler], Awaitable[T]], **options: int
) -> T:
    """Run ``body`` with a scheduler over ``runtime``'s real pipeline and fetcher."""

    async def main() -> T:
        async with runtime.make_fetcher() as fetcher:
            scheduler = Scheduler(
                runtime.store, runtime.make_pipeline(fetcher),
                job_lookup(lambda: runtime.settings), clock=clock, **options,  # type: ignore[arg-type]
            )  # fmt: skip
            return await body(scheduler)

    return asyncio.run(main())


async def tick_and_wait(scheduler: Scheduler) -> list[PollResult | None]:
    """One tick, then every poll it started, finished."""
    return list(await asyncio.gather(*await scheduler.tick()))


def serve_feed(server: LoopbackServer, path: str) -> None:
    server.route(
        path,
        (200, {"Content-Type": "application/rss+xml"}, rss(item("one", "http://x.example/1", "1"))),
    )


def leases(store: Store) -> dict[str, str | None]:
    return {f.name: f.lease_owner for f in store.list_feeds()}


def test_a_10m_feed_is_polled_at_0_and_10m_not_between(
    runtime_for: Callable[[str], Runtime], clock: Clock, loopback: LoopbackServer
) -> None:
    serve_feed(loopback, "/news.xml")
    runtime = runtime_for(feed_toml("news", loopback.url("/news.xml"), interval="10m"))
    hits = lambda: loopback.hits["/news.xml"]  # noqa: E731

    async def body(scheduler: Scheduler) -> None:
        [result] = await tick_and_wait(scheduler)
        assert result is not None and result.outcome == "ok" and hits() == 1
        assert leases(runtime.store) == {"news": None}
        record = feed_named(runtime.store, "news")
        assert record is not None and record.next_check_at is not None
        due = record.next_check_at
        # Ten minutes, plus at most the configured 10 % jitter.
        assert timedelta(minutes=10) <= due - T0 <= timedelta(minutes=11)

        clock.advance(minutes=5)
        assert await tick_and_wait(scheduler) == [] and hits() == 1
        clock.now = due - timedelta(seconds=1)
        assert await tick_and_wait(scheduler) == [] and hits() == 1
        clock.now = due
        [again] = await tick_and_wait(scheduler)
        assert again is not None and again.outcome == "ok" and hits() == 2
        assert leases(runtime.store) == {"news": None}
        assert scheduler.polls_finished == 2 and scheduler.running == 0

    with_scheduler(runtime, clock, body)


def test_a_poll_gives_its_lease_back_with_its_outcome(
    runtime_for: Callable[[str], Runtime],
    clock: Clock,
    loopback: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_feed(loopback, "/news.xml")
    runtime = runtime_for(feed_toml("news", loopback.url("/news.xml"), interval="10m"))
    released: list[int] = []
    release = runtime.store.release_lease

    def counting(feed_id: int, owner: str) -> bool:
        released.append(feed_id)
        return release(feed_id, owner)

    monkeypatch.setattr(runtime.store, "release_lease", counting)

    async def body(scheduler: Scheduler) -> None:
        [result] = await tick_and_wait(scheduler)
        assert result is not None and result.outcome == "ok" and result.lease_returned
        assert leases(runtime.store) == {"news": None}
        # No transaction of its own per poll: the outcome's commit gave the lease back.
        assert released == []

    # The daemon's scheduler leases as its pipeline's owner (``Service.run``).
    with_scheduler(runtime, clock, body, owner=runtime.owner)  # type: ignore[arg-type]


def test_two_schedulers_on_one_database_never_poll_the_same_feed(
    tmp_path: Path,
    runtime_for: Callable[..., Runtime],
    clock: Clock,
    loopback: LoopbackServer,
) -> None:
    names = [f"f{i}" for i in range(6)]
    for name in names:
        serve_feed(loopback, f"/{name}.xml")
    feeds = "".join(feed_toml(n, loopback.url(f"/{n}.xml"), interval="10m") for n in names)
    first, second = runtime_for(feeds, "concurrency = 4\n"), runtime_for(feeds, "concurrency = 4\n")

    async def both() -> list[list[PollResult | None]]:
        async with first.make_fetcher() as f1, second.make_fetcher() as f2:
            schedulers = [
                Scheduler(
                    rt.store,
                    rt.make_pipeline(fetcher),
                    job_lookup(lambda rt=rt: rt.settings),  # type: ignore[misc]
                    clock=clock,
                    owner=make_owner(),
                )
                for rt, fetcher in ((first, f1), (second, f2))
            ]
            assert schedulers[0].owner != schedulers[1].owner
            assert [s.concurrency for s in schedulers] == [4, 4]
            return list(await asyncio.gather(*(tick_and_wait(s) for s in schedulers)))

    one, two = asyncio.run(both())
    polled = [r.feed for r in one + two if r is not None]
    # Together they poll every due feed exactly once; neither exceeds its concurrency.
    assert sorted(polled) == names and len(one) <= 4 and len(two) <= 4
    assert all(loopback.hits[f"/{n}.xml"] == 1 for n in names)
    assert set(leases(first.store).values()) == {None}


# --- the scheduler alone, with a stand-in for the pipeline ----------------------------------


@dataclass
class Gate:
    """A poller whose polls wait until the test opens the gate, then set the next check."""

    store: Store
    clock: Clock
    opened: asyncio.Event
    started: list[str]
    slots: Slots

    async def poll(self, job: FeedJob) -> PollResult:
        self.started.append(job.record.name)
        await self.opened.wait()
        next_check = self.clock() + timedelta(seconds=job.interval_seconds)
        set_feed_state(self.store, job.record.id, next_check_at=next_check)
        return PollResult(feed=job.record.name, outcome="ok")


def gated(
    store: Store, clock: Clock, concurrency: int = FetchLimits.concurrency, **options: float
) -> tuple[Scheduler, Gate]:
    gate = Gate(store, clock, asyncio.Event(), [], Slots(concurrency))

    def job_for(record: FeedRecord) -> FeedJob | None:
        if record.name == "gone":
            return None
        return FeedJob(record=record, spec=None, interval_seconds=600)  # type: ignore[arg-type]

    return Scheduler(store, gate, job_for, clock=clock, owner="me", **options), gate  # type: ignore[arg-type]


def test_no_more_polls_than_the_concurrency(
    runtime_for: Callable[[str], Runtime], clock: Clock
) -> None:
    feeds = "".join(feed_toml(f"f{i}", f"https://f{i}.example/") for i in range(5))
    store = runtime_for(feeds).store

    async def body() -> None:
        scheduler, gate = gated(store, clock, concurrency=2)
        assert len(await scheduler.tick()) == 2
        assert await scheduler.tick() == []  # both slots busy
        assert sorted(o for o in leases(store).values() if o) == ["me", "me"]
        gate.opened.set()
        assert await scheduler.wait_idle(timeout=5)
        assert len(await scheduler.tick()) == 2
        assert await scheduler.wait_idle(timeout=5)
        assert len(await scheduler.tick()) == 1
        assert await scheduler.wait_idle(timeout=5)
        assert sorted(gate.started) == [f"f{i}" for i in range(5)]
        assert set(leases(store).values()) == {None}

    asyncio.run(body())


def test_long_polls_keep_their_lease(runtime_for: Callable[[str], Runtime], clock: Clock) -> None:
    store = runtime_for(feed_toml("slow", "https://slow.example/")).store

    async def body() -> None:
        scheduler, gate = gated(store, clock, lease_seconds=60)
        [task] = await scheduler.tick()
        clock.advance(seconds=20)
        await scheduler.tick()  # a third of the lease used: nothing to renew yet
        assert _lease_of(store) == T0 + timedelta(seconds=60)
        clock.advance(seconds=15)
        await scheduler.tick()  # past half: renewed from now
        assert _lease_of(store) == T0 + timedelta(seconds=95)
        # At the first lease's end another daemon still finds the feed taken.
        assert store.lease_due_feeds("other", T0 + timedelta(seconds=61), 60) == []
        gate.opened.set()
        await task
        assert leases(store) == {"slow": None}

    asyncio.run(body())


def test_drain_lets_quick_polls_finish_and_cancels_the_rest(
    runtime_for: Callable[[str], Runtime], clock: Clock
) -> None:
    store = runtime_for(
        feed_toml("a", "https://a.example/") + feed_toml("b", "https://b.example/")
    ).store

    async def body() -> None:
        scheduler, gate = gated(store, clock)
        tasks = await scheduler.tick()
        asyncio.get_running_loop().call_soon(gate.opened.set)
        drained = await scheduler.drain(grace=5)
        assert (drained.finished, drained.cancelled) == (2, 0)
        assert all(t.result() is not None for t in tasks)
        assert scheduler.stopping and await scheduler.tick() == []

        clock.advance(minutes=10)
        stuck, _never_opened = gated(store, clock)
        tasks = await stuck.tick()
        assert len(tasks) == 2 and set(leases(store).values()) == {"me"}
        drained = await stuck.drain(grace=0.05)
        assert (drained.finished, drained.cancelled) == (0, 2)
        assert all(t.cancelled() for t in tasks)
        assert set(leases(store).values()) == {None}  # cancelled polls gave their feed back

    asyncio.run(body())


def test_a_feed_no_longer_configured_is_not_polled(
    runtime_for: Callable[[str], Runtime], clock: Clock
) -> None:
    store = runtime_for(feed_toml("gone", "https://gone.example/")).store

    async def body() -> None:
        scheduler, gate = gated(store, clock)
        assert await scheduler.tick() == []
        assert gate.started == [] and leases(store) == {"gone": None}

    asyncio.run(body())


def test_the_job_lookup_follows_a_reload(
    runtime_for: Callable[[str], Runtime], tmp_path: Path, database_url: str
) -> None:
    runtime = runtime_for(
        feed_toml("a", "https://a.example/", interval="1h")
        + feed_toml("b", "https://b.example/", interval="1h")
    )
    records = {record.name: record for record in runtime.store.list_feeds()}
    current = [runtime.settings]
    lookup = job_lookup(lambda: current[0])
    first = lookup(records["a"])
    assert first is not None and first.interval_seconds == 3600
    assert lookup(records["b"]) is not None
    # A reload: a's interval changed, b removed.
    current[0] = write_config(
        tmp_path, database_url, feed_toml("a", "https://a.example/", interval="2m")
    )
    again = lookup(records["a"])
    assert again is not None and again.interval_seconds == 120
    assert lookup(records["b"]) is None


def _lease_of(store: Store) -> datetime | None:
    [feed] = store.list_feeds()
    return feed.lease_expires_at


def test_a_changed_interval_takes_effect_at_the_next_tick(
    runtime_for: Callable[[str], Runtime],
    clock: Clock,
    loopback: LoopbackServer,
    tmp_path: Path,
    database_url: str,
) -> None:
    """Issue 16, item 6: lowering a feed's interval (reload, or restart) moves its next
    check; before, it stayed on the old schedule until the old interval ran out."""
    from ingestd.cli.service import Service

    serve_feed(loopback, "/news.xml")
    url = loopback.url("/news.xml")
    runtime = runtime_for(feed_toml("news", url, interval="1h"))
    hits = lambda: loopback.hits["/news.xml"]  # noqa: E731

    async def body(scheduler: Scheduler) -> None:
        assert len(await tick_and_wait(scheduler)) == 1 and hits() == 1  # T0; next about 1h
        clock.advance(minutes=5)
        assert await tick_and_wait(scheduler) == []
        # SIGHUP after the file now says 2m: more than 2 minutes since the last poll.
        service = Service(tmp_path / "ingestd.toml", runtime.settings)
        service._runtime = runtime
        write_config(tmp_path, database_url, feed_toml("news", url, interval="2m"))
        await service.reload()
        runtime.settings = service.settings  # what the daemon's job lookup reads
        assert len(await tick_and_wait(scheduler)) == 1 and hits() == 2
        record = feed_named(runtime.store, "news")
        assert record is not None and record.next_check_at is not None
        assert record.next_check_at <= clock.now + timedelta(minutes=2.2)  # the 1h rhythm: no
        # A raised interval waits for the next check it already has.
        write_config(tmp_path, database_url, feed_toml("news", url, interval="6h"))
        await service.reload()
        runtime.settings = service.settings
        clock.advance(minutes=3)
        assert len(await tick_and_wait(scheduler)) == 1 and hits() == 3

    with_scheduler(runtime, clock, body)

    # A restart with a lower interval: due at once, since the last poll is 10 minutes old.
    record = feed_named(runtime.store, "news")
    assert record is not None and record.next_check_at is not None
    assert record.next_check_at > clock.now + timedelta(hours=5)
    clock.advance(minutes=10)
    restarted = runtime_for(feed_toml("news", url, interval="5m"))
    assert [f.name for f in due_feeds(restarted.store, clock.now)] == ["news"]


def test_after_interval_change_is_a_pure_rule() -> None:
    """Issue 16, item 6: the rule itself (decide.after_interval_change), without I/O."""
    from ingestd.decide import Rhythm, after_interval_change

    later = T0 + timedelta(hours=1)
    # Lowered: the last poll plus the new interval, but never before now.
    assert after_interval_change(later, T0, Rhythm(120), T0 + timedelta(minutes=1)) == (
        T0 + timedelta(minutes=2)
    )
    now = T0 + timedelta(minutes=5)
    assert after_interval_change(later, T0, Rhythm(120), now) == now
    # Below the floor: the floor.
    assert after_interval_change(later, T0, Rhythm(10, floor=60), T0) == T0 + timedelta(minutes=1)
    # Raised: the check already planned stays; never polled: stays due.
    assert after_interval_change(later, T0, Rhythm(7200), now) == later
    assert after_interval_change(None, None, Rhythm(120), now) is None
