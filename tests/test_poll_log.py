"""Group commit of poll outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ingestd.errors import StorageError
from ingestd.pipeline import PollLog
from ingestd.store import FeedConfig, FetchAttempt, Store, open_store

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
        store.sync_feeds([FeedConfig(f"f{i}", f"https://{i}.example/", "feed", 60)
                          for i in range(50)], NOW)
        ids = [f.id for f in store.list_feeds()]
        counting = Counting(store)
        log = PollLog(counting)  # type: ignore[arg-type]

        async def go() -> None:
            await asyncio.gather(*(log.record(i, attempt(), {"last_status": 200,
                                                             "last_fetch_at": NOW})
                                   for i in ids))

        asyncio.run(go())
        assert sum(counting.groups) == 50 and len(counting.groups) < 50
        assert all(f.last_status == 200 for f in store.list_feeds())
        assert all(len(store.recent_fetches(i)) == 1 for i in ids)


def test_one_bad_poll_does_not_fail_its_group(database_url: str) -> None:
    with open_store(database_url) as store:
        store.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], NOW)
        [good] = [f.id for f in store.list_feeds()]
        log = PollLog(store)

        async def go() -> list[object]:
            return list(await asyncio.gather(
                log.record(good, attempt(), {"last_status": 200}),
                log.record(10_000, attempt(), {"last_status": 200}),
                return_exceptions=True,
            ))

        ok, bad = asyncio.run(go())
        assert ok is None
        assert isinstance(bad, StorageError)
        feed = store.get_feed("a")
        assert feed is not None and feed.last_status == 200
        with pytest.raises(TypeError, match="unknown state fields"):
            store.record_polls([(good, attempt(), {"colour": "red"})])  # type: ignore[typeddict-unknown-key]
