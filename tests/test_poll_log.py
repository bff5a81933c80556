"""Group commit of poll outcomes."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd.commit import LARGE_GROUP, GroupCommit, PollLog
from ingestd.errors import StorageError
from ingestd.fetch import Fetcher, FetchLimits, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline
from ingestd.store import FeedConfig, FetchAttempt, Store, open_store
from ingestd.types import FeedSpec
from tests.loopback import LoopbackServer, Response
from tests.storehelp import feed_named, fetch_log

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Counting:
    """A store that counts the transactions record_polls makes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.groups: list[int] = []

    def record_polls(self, polls: list[tuple[int, FetchAttempt, dict[str, object]]]) -> object:
        self.groups.append(len(polls))
        return self.store.record_polls(polls)  # type: ignore[arg-type]


def attempt(status: int = 200) -> FetchAttempt:
    return FetchAttempt(NOW, 5, status, "ok", 10, 0)


def test_polls_ending_together_share_transactions(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds(
            [FeedConfig(f"f{i}", f"https://{i}.example/", "feed", 60) for i in range(50)], NOW
        )
        ids = [f.id for f in store.list_feeds()]
        counting = Counting(store)
        log = PollLog(counting)  # type: ignore[arg-type]

        async def go() -> None:
            await asyncio.gather(
                *(log.record(i, attempt(), {"last_status": 200, "last_fetch_at": NOW}) for i in ids)
            )

        asyncio.run(go())
        assert sum(counting.groups) == 50 and len(counting.groups) < 50
        assert all(f.last_status == 200 for f in store.list_feeds())
        assert all(len(fetch_log(store, i)) == 1 for i in ids)


def test_one_bad_poll_does_not_fail_its_group(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], NOW)
        [good] = [f.id for f in store.list_feeds()]
        log = PollLog(store)

        async def go() -> list[object]:
            return list(
                await asyncio.gather(
                    log.record(good, attempt(), {"last_status": 200}),
                    log.record(10_000, attempt(), {"last_status": 200}),
                    return_exceptions=True,
                )
            )

        ok, bad = asyncio.run(go())
        assert ok is None
        assert isinstance(bad, StorageError)
        feed = feed_named(store, "a")
        assert feed is not None and feed.last_status == 200
        with pytest.raises(TypeError, match="unknown state fields"):
            store.record_polls([(good, attempt(), {"colour": "red"})])  # type: ignore[typeddict-unknown-key]


class Writes:
    """A GroupCommit writer that records each group it is given."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    def __call__(self, items: list[int]) -> None:
        self.groups.append(items)


def test_lingering_gathers_outcomes_that_arrive_a_moment_apart() -> None:
    writes = Writes()

    async def go(linger: float) -> None:
        group: GroupCommit[int, None] = GroupCommit(
            writes, linger=linger, worth_waiting=lambda: True
        )

        async def late(item: int, after: float) -> None:
            await asyncio.sleep(after)
            await group.submit(item)

        await asyncio.gather(late(1, 0.0), late(2, 0.01), late(3, 0.02))

    asyncio.run(go(0.2))
    assert writes.groups == [[1, 2, 3]]
    writes.groups.clear()
    asyncio.run(go(0.0))
    assert writes.groups == [[1], [2], [3]]


def test_no_lingering_when_nothing_more_is_coming_or_the_group_is_large() -> None:
    # An hour's linger: were it taken, the test would time out.
    writes = Writes()

    async def go(items: int, coming: bool) -> None:
        group: GroupCommit[int, None] = GroupCommit(
            writes, linger=3600.0, worth_waiting=lambda: coming
        )
        await asyncio.wait_for(asyncio.gather(*(group.submit(i) for i in range(items))), timeout=5)

    asyncio.run(go(1, coming=False))
    asyncio.run(go(LARGE_GROUP, coming=True))
    assert [len(g) for g in writes.groups] == [1, LARGE_GROUP]


class HeldStore:
    """A store whose outcome commits wait until ``release`` is set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.release = threading.Event()
        self.groups: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def record_polls(
        self, polls: list[tuple[int, FetchAttempt, dict[str, object]]], give_back: str | None = None
    ) -> set[int]:
        assert self.release.wait(timeout=10), "outcome commits were never released"
        self.groups.append(len(polls))
        return self.store.record_polls(polls, give_back)  # type: ignore[arg-type]


def test_polls_waiting_for_their_outcome_commit_let_the_next_polls_run(
    database_url: str, tmp_path: Path
) -> None:
    # One fetch at a time and 16 polls past their fetch: were a poll to keep its
    # slot until its outcome is committed, no more than 17 of the 40 would have asked
    # the server while the commits are held.
    feeds = 40
    with open_store(database_url) as store, LoopbackServer() as server:
        server.route("/f.xml", Response(304, {"ETag": '"v1"'}))
        store.sync_feeds(
            [FeedConfig(f"f{i}", server.url("/f.xml"), "feed", 60) for i in range(feeds)], NOW
        )
        held = HeldStore(store)
        jobs = [
            FeedJob(record, FeedSpec(record.name, record.url), 60, trusted=True)
            for record in store.list_feeds()
        ]

        async def go() -> list[str]:
            limits = FetchLimits(concurrency=1, per_host=1)
            async with Fetcher(limits, guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                line = Pipeline(
                    held,
                    fetcher,
                    tmp_path,
                    clock=lambda: NOW,  # type: ignore[arg-type]
                    owner="me:1:x",
                )
                polls = asyncio.gather(*(line.poll(job) for job in jobs))
                asked = await asyncio.to_thread(
                    server.wait_until, lambda s: s.hits["/f.xml"] == feeds, 10
                )
                held.release.set()
                assert asked, f"only {server.hits['/f.xml']} of {feeds} polls fetched"
                return [result.outcome for result in await polls]

        assert asyncio.run(go()) == ["not_modified"] * feeds
        assert sum(held.groups) == feeds and len(held.groups) <= 3
        assert all(f.last_status == 304 for f in store.list_feeds())
