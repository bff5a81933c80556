"""The per-poll cap on new entries (what keeps a 50,000-item feed from holding a poll
for minutes): each poll archives at most the cap, says how many wait, and the following
polls archive the rest, each entry exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestd.cli.report import fetch_summary
from ingestd.decide import Rhythm
from ingestd.fetch import Fetcher, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline, PollResult
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import FeedSpec
from tests.hostile.server import RSS_TYPE, item, rss
from tests.loopback import LoopbackServer
from tests.storehelp import feed_named

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow


def _poll(store: Store, server: LoopbackServer, root: Path, cap: int) -> PollResult:
    record = feed_named(store, "f")
    assert record is not None
    job = FeedJob(
        record,
        FeedSpec("f", record.url),
        600.0,
        trusted=True,
        rhythm=Rhythm(600.0, floor=60, jitter=0.0),
    )

    async def go() -> PollResult:
        async with Fetcher(guard=NetworkGuard()) as fetcher:
            pipeline = Pipeline(store, fetcher, root, max_new_per_poll=cap)
            return await pipeline.poll(job)

    return asyncio.run(go())


def test_backlog_is_archived_over_several_polls_exactly_once(
    tmp_path: Path, database_url: str
) -> None:
    start = datetime(2022, 2, 1, tzinfo=UTC)
    items = "".join(
        item(
            f"n{i}",
            f"http://x.example/{i}",
            f"g{i}",
            date=(start + timedelta(days=i)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        )
        for i in reversed(range(7))  # newest first, as feeds list them
    )
    archive = tmp_path / "archive"
    with LoopbackServer() as server, open_store(database_url) as store:
        server.route("/f.xml", (200, RSS_TYPE, rss(items).encode()))
        store.sync_feeds([FeedConfig("f", server.url("/f.xml"), "feed", 600)], datetime.now(UTC))
        first = _poll(store, server, archive, cap=3)
        assert (first.outcome, first.new_entries, first.archived) == ("ok", 7, 3)
        assert first.warnings == (
            "4 more new entries than the 3 archived per poll; the next polls archive them",
        )
        assert fetch_summary([first], 1.0)["warnings"] == [
            {"feed": "f", "warning": first.warnings[0]}
        ]
        second = _poll(store, server, archive, cap=3)
        third = _poll(store, server, archive, cap=3)
        fourth = _poll(store, server, archive, cap=3)
    assert [r.archived for r in (second, third, fourth)] == [3, 1, 0]
    assert third.warnings == fourth.warnings == ()
    files = sorted((archive / "articles" / "f").iterdir())
    links = sorted(p.read_text().split("\n")[1] for p in files)
    assert links == sorted(f"[n{i}](http://x.example/{i})" for i in range(7))
    # Oldest first: the oldest entry got the first (highest) file number.
    assert "[n0]" in (archive / "articles" / "f" / "1048575.md").read_text()
