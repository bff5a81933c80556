"""The format-A site index ``lists/{feed}.md``: its text, when it is written, and its repair."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestd.fetch import Fetcher
from ingestd.pipeline import FeedJob, Pipeline, PollResult
from ingestd.site_index import INDEX_LIMIT, TITLE_LIMIT, IndexLine, render_index
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import FeedSpec
from tests.test_fetch_e2e import item, rss

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_index_list_newest_first_in_utc8() -> None:
    lines = [
        IndexLine(datetime(2022, 2, 28, 16, 30, tzinfo=UTC), "later", "articles/voa/1048574.md"),
        IndexLine(datetime(2022, 2, 28, 15, 0, tzinfo=UTC), "earlier", "articles/voa/1048575.md"),
    ]
    assert render_index("voa", lines) == (
        "voa\n------\n\n"
        "3-1 [later](/articles/voa/1048574.md)\n\n"
        "2-28 [earlier](/articles/voa/1048575.md)\n\n"
    )


def test_an_index_is_bounded_and_one_line_per_entry() -> None:
    many = [IndexLine(datetime(2022, 1, 1, tzinfo=UTC), str(i), "x") for i in range(400)]
    assert render_index("s", many).count("\n\n") == 1 + INDEX_LIMIT
    odd = IndexLine(datetime(2022, 1, 1, tzinfo=UTC), "a\n\n  b\t" + "c" * 5000, "articles/s/1.md")
    text = render_index("s", [odd])
    [line] = text.split("\n\n")[1:-1]
    assert line == f"1-1 [a b {'c' * (TITLE_LIMIT - 4)}](/articles/s/1.md)"


# --- written by the pipeline, repaired at start-up ---------------------------------------


class Site:
    """A local feed ``a`` (format A) polled by a pipeline into ``root``."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.root = tmp_path / "archive"
        self.feed_file = tmp_path / "a.xml"
        self.store: Store = open_store(database_url)
        url = self.feed_file.as_uri()
        self.store.sync_feeds([FeedConfig("a", url, "feed", 60)], NOW)
        self.clock = NOW

    def serve(self, *numbers: int) -> None:
        items = "".join(
            item(f"title {n}", f"http://x.example/{n}", str(n),
                 date=(NOW - timedelta(hours=n)).strftime("%a, %d %b %Y %H:%M:%S GMT"))
            for n in numbers
        )  # fmt: skip
        self.feed_file.write_bytes(rss(items))

    def pipeline(self, fetcher: Fetcher) -> Pipeline:
        return Pipeline(self.store, fetcher, self.root, clock=lambda: self.clock, owner="me:1:x")

    def poll(self) -> PollResult:
        async def go() -> PollResult:
            async with Fetcher() as fetcher:
                [record] = self.store.list_feeds()
                return await self.pipeline(fetcher).poll(
                    FeedJob(record, FeedSpec("a", record.url), 60)
                )

        return asyncio.run(go())

    def reconcile(self) -> int:
        async def go() -> int:
            async with Fetcher() as fetcher:
                return self.pipeline(fetcher).reconcile(settle_seconds=0).indexes_rewritten

        return asyncio.run(go())

    @property
    def index(self) -> Path:
        return self.root / "lists" / "a.md"


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Site:
    return Site(tmp_path, database_url)


def test_each_poll_that_archives_rewrites_the_index(site: Site) -> None:
    site.serve(3, 1)
    assert site.poll().archived == 2
    assert site.index.read_text() == (
        "a\n------\n\n"
        "3-2 [title 1](/articles/a/1048574.md)\n\n"  # published 09:00 UTC: 17:00 in UTC+8
        "3-2 [title 3](/articles/a/1048575.md)\n\n"
    )
    site.serve(30, 3, 1)  # one more, 30 hours older: 3-1 in UTC+8
    assert site.poll().archived == 1
    assert site.index.read_text().endswith("3-1 [title 30](/articles/a/1048573.md)\n\n")
    before = site.index.stat().st_mtime_ns
    os.utime(site.index, ns=(before - 10**9, before - 10**9))
    assert site.poll().archived == 0  # nothing new: the index is left alone
    assert site.index.stat().st_mtime_ns == before - 10**9
    assert not list((site.root / "lists").glob(".ingestd-tmp-*"))


def test_start_up_repair_rewrites_an_index_behind_its_folder(site: Site) -> None:
    site.serve(2, 1)
    site.poll()
    good = site.index.read_text()
    assert site.reconcile() == 0  # up to date: not rewritten
    # A crash between a commit and its index: the index is older than the folder.
    site.index.write_text("a\n------\n\n")
    folder = (site.root / "articles" / "a").stat().st_mtime_ns
    os.utime(site.index, ns=(folder - 10**9, folder - 10**9))
    assert site.reconcile() == 1
    assert site.index.read_text() == good
    site.index.unlink()
    assert site.reconcile() == 1
    assert site.index.read_text() == good
