"""A feed's first poll: parsed and written in one pool step, then polled as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ingestd.fetch import Fetcher, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline, PollResult
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import FeedSpec
from tests.disk import archived_files
from tests.loopback import LoopbackServer
from tests.storehelp import entry_with_key, feed_named, set_feed_state
from tests.test_fetch_e2e import item, rss

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DATES = [
    "Mon, 02 Mar 2026 08:00:00 GMT",
    "Mon, 02 Mar 2026 09:00:00 GMT",
    "Mon, 02 Mar 2026 07:00:00 GMT",
    "Mon, 02 Mar 2026 09:30:00 GMT",
]


class RecordingPool(ThreadPoolExecutor):
    """An executor that remembers the name of every pool step it ran."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.steps: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.steps.append(fn.func.__name__ if isinstance(fn, partial) else fn.__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def store(database_url: str) -> Store:
    opened = open_store(database_url)
    opened.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], NOW)
    return opened


def poll_items(
    store: Store, root: Path, count: int, cap: int = 500
) -> tuple[PollResult, list[str]]:
    """Serve the first ``count`` items and poll feed "a" once; the result and pool steps."""
    pool = RecordingPool()
    items = "".join(
        item(f"title {n}", f"http://x.example/{n}", str(n), date=DATES[n]) for n in range(count)
    )
    with LoopbackServer() as server, pool:
        server.route(
            "/f.xml", (200, {"Content-Type": "application/rss+xml", "ETag": '"v1"'}, rss(items))
        )
        feed = feed_named(store, "a")
        assert feed is not None
        record = set_feed_state(store, feed.id, url=server.url("/f.xml"))

        async def go() -> PollResult:
            async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                line = Pipeline(
                    store,
                    fetcher,
                    root,
                    clock=lambda: NOW,
                    owner="me:1:x",
                    parse_executor=pool,
                    max_new_per_poll=cap,
                )
                return await line.poll(FeedJob(record, FeedSpec("a", record.url), 60, trusted=True))

        return asyncio.run(go()), pool.steps


def titles_by_file(root: Path) -> dict[str, str]:
    found = {}
    for relative in sorted(archived_files(root)):
        text = (root / relative).read_text(encoding="utf-8")
        found[Path(relative).name] = next(
            t for t in ("title 0", "title 1", "title 2", "title 3") if t in text
        )
    return found


def test_first_poll_is_one_pool_step_then_polls_look_up_and_write(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    first, steps = poll_items(store, root, 3)
    # Parsed and written in one step; the files are named one batch at a time, just
    # before the batch's rows are committed (here one batch).
    assert steps == ["read_new_feed", "name_written"]
    assert (first.outcome, first.new_entries, first.archived) == ("ok", 3, 3)
    # Oldest first, numbered down: the newest entry has the lowest number.
    assert titles_by_file(root) == {
        "1048573.md": "title 1",
        "1048574.md": "title 0",
        "1048575.md": "title 2",
    }
    feed = feed_named(store, "a")
    assert feed is not None
    entry = entry_with_key(store, feed.id, "guid:1")
    assert entry is not None and entry.archive_path == "articles/a/1048573.md"
    assert entry.title == "title 1" and entry.link == "http://x.example/1"
    assert entry.archived_by == "me:1:x" and feed.etag == '"v1"'
    # Once the feed has entries, a poll looks them up first: one new entry, one file.
    second, steps = poll_items(store, root, 4)
    assert steps == ["read_feed", "write_items"]
    assert (second.new_entries, second.archived) == (1, 1)
    assert titles_by_file(root)["1048572.md"] == "title 3"


def test_first_poll_keeps_the_cap_and_the_next_poll_takes_the_rest(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    first, _steps = poll_items(store, root, 3, cap=2)
    assert (first.new_entries, first.archived) == (3, 2)
    assert any("1 more new entries than the 2" in w for w in first.warnings)
    assert set(titles_by_file(root).values()) == {"title 2", "title 0"}  # the two oldest
    feed = feed_named(store, "a")
    assert feed is not None and feed.etag is None  # the next poll gets the whole feed
    second, steps = poll_items(store, root, 3, cap=2)
    assert steps == ["read_feed", "write_items"]
    assert (second.new_entries, second.archived) == (1, 1)
    assert titles_by_file(root)["1048573.md"] == "title 1"


def test_a_pipeline_asks_whether_a_feed_has_entries_until_it_has(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = store.has_entries
    monkeypatch.setattr(
        store, "has_entries", lambda feed_id: (asked.append(feed_id), real(feed_id))[1]
    )
    pool = RecordingPool()
    with LoopbackServer() as server, pool:
        server.route(
            "/f.xml",
            (
                200,
                {"Content-Type": "application/rss+xml"},
                rss(item("t", "http://x.example/0", "0", date=DATES[0])),
            ),
        )
        feed = feed_named(store, "a")
        assert feed is not None
        record = set_feed_state(store, feed.id, url=server.url("/f.xml"))

        async def go() -> list[int]:
            async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                line = Pipeline(
                    store, fetcher, tmp_path, clock=lambda: NOW, owner="me:1:x", parse_executor=pool
                )
                job = FeedJob(record, FeedSpec("a", record.url), 60, trusted=True)
                return [(await line.poll(job)).archived for _ in range(3)]

        assert asyncio.run(go()) == [1, 0, 0]
    assert asked == [feed.id, feed.id]  # empty, then found: the third poll does not ask
    assert pool.steps == ["read_new_feed", "name_written", "read_feed", "read_feed"]
