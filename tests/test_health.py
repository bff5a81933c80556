"""Feed rhythm and health with an injected clock: no sleeps, real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestd import decide
from ingestd.decide import GONE_REASON, Hints, Rhythm
from ingestd.fetch import Fetcher, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline, PollResult
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import ArchiveFormat, FeedSpec
from tests.loopback import LoopbackServer, Request, Response
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import due_feeds, feed_named
from tests.test_fetch_e2e import item, rss

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url) as opened:
        yield opened


class Harness:
    """One feed on the loopback server, polled through the real pipeline."""

    def __init__(self, store: Store, server: LoopbackServer, root: Path) -> None:
        self.store, self.server, self.root = store, server, root
        self.clock = Clock()
        self.interval = 600.0

    def add(self, path: str = "/f.xml") -> None:
        self.store.sync_feeds([FeedConfig("f", self.server.url(path), "feed", 600)], self.clock())

    def poll(self) -> PollResult:
        record = feed_named(self.store, "f")
        assert record is not None
        job = FeedJob(
            record,
            FeedSpec("f", record.url),
            self.interval,
            trusted=True,
            rhythm=Rhythm(self.interval, floor=60, jitter=0.1),
        )

        async def go() -> PollResult:
            async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                pipeline = Pipeline(
                    self.store, fetcher, self.root, clock=self.clock, rand=lambda: 0.0
                )
                return await pipeline.poll(job)

        return asyncio.run(go())

    def next_check(self) -> datetime:
        record = feed_named(self.store, "f")
        assert record is not None and record.next_check_at is not None
        return record.next_check_at


@pytest.fixture
def harness(store: Store, loopback: LoopbackServer, tmp_path: Path) -> Harness:
    return Harness(store, loopback, tmp_path / "archive")


FEED = rss(item("a", "http://x.example/a", "a"))


def test_interval_sets_next_check(harness: Harness) -> None:
    harness.server.route("/f.xml", (200, {}, FEED))
    harness.add()
    assert harness.poll().outcome == "ok"
    assert harness.next_check() == T0 + timedelta(seconds=600)


def test_retry_after_429_moves_the_next_poll_an_hour_out(harness: Harness) -> None:
    harness.server.route("/f.xml", (429, {"Retry-After": "3600"}, b"slow down"))
    harness.add()
    result = harness.poll()
    assert result.outcome == "failed" and result.status == 429
    assert harness.next_check() == T0 + timedelta(hours=1)


def test_retry_after_as_http_date_on_503(harness: Harness) -> None:
    # The fetcher reads HTTP dates against the real clock; give it one far enough out.
    later = datetime.now(UTC) + timedelta(hours=2)
    header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    harness.server.route("/f.xml", (503, {"Retry-After": header}, b"maintenance"))
    harness.add()
    harness.poll()
    wait = (harness.next_check() - T0).total_seconds()
    assert 7000 < wait < 7300


def test_five_errors_back_off_and_a_success_resets(harness: Harness) -> None:
    state = {"status": 500}

    def handle(_request: Request) -> Response:
        return Response(state["status"], {}, FEED if state["status"] == 200 else b"err")

    harness.server.route("/f.xml", handle)
    harness.add()
    waits = []
    for _ in range(5):
        result = harness.poll()
        assert result.outcome == "failed"
        waits.append(harness.next_check() - harness.clock.now)
        harness.clock.now = harness.next_check()
    assert waits == [timedelta(seconds=600 * 2**n) for n in range(5)]
    record = feed_named(harness.store, "f")
    assert record is not None
    assert record.consecutive_errors == 5 and record.failing_since == T0
    assert record.last_error is not None and "500" in record.last_error
    state["status"] = 200
    assert harness.poll().outcome == "ok"
    record = feed_named(harness.store, "f")
    assert record is not None
    assert (record.consecutive_errors, record.failing_since, record.last_error) == (0, None, None)
    assert harness.next_check() == harness.clock.now + timedelta(seconds=600)


def test_backoff_is_capped() -> None:
    when = decide.next_check(T0, Rhythm(600, max_backoff=3600), Hints(), errors=30)
    assert when == T0 + timedelta(hours=1)


def test_301_updates_the_stored_url(harness: Harness) -> None:
    harness.server.route("/old.xml", (301, {"Location": harness.server.url("/new.xml")}, b""))
    harness.server.route("/new.xml", (200, {}, FEED))
    harness.add("/old.xml")
    assert harness.poll().outcome == "ok"
    record = feed_named(harness.store, "f")
    assert record is not None
    assert record.url == harness.server.url("/new.xml")
    assert record.original_url == harness.server.url("/old.xml")
    harness.poll()
    assert harness.server.hits["/old.xml"] == 1 and harness.server.hits["/new.xml"] == 2


def test_302_does_not_update_the_url(harness: Harness) -> None:
    harness.server.route("/old.xml", (302, {"Location": harness.server.url("/new.xml")}, b""))
    harness.server.route("/new.xml", (200, {}, FEED))
    harness.add("/old.xml")
    harness.poll()
    record = feed_named(harness.store, "f")
    assert record is not None and record.url == harness.server.url("/old.xml")


def test_410_disables_the_feed(harness: Harness) -> None:
    harness.server.route("/f.xml", (410, {}, b"gone"))
    harness.add()
    assert harness.poll().status == 410
    record = feed_named(harness.store, "f")
    assert record is not None
    assert not record.enabled and record.disabled_reason == GONE_REASON
    assert due_feeds(harness.store, T0 + timedelta(days=30)) == []
    assert harness.store.enable_feed("f", now=T0)
    assert [f.name for f in due_feeds(harness.store, T0)] == ["f"]


def test_ttl_longer_than_interval_wins(harness: Harness) -> None:
    body = FEED.replace(b"<title>t</title>", b"<title>t</title><ttl>120</ttl>")
    harness.server.route("/f.xml", (200, {}, body))
    harness.add()
    harness.poll()
    assert harness.next_check() == T0 + timedelta(hours=2)


def test_cache_control_max_age_wins(harness: Harness) -> None:
    harness.server.route("/f.xml", (200, {"Cache-Control": "public, max-age=5400"}, FEED))
    harness.add()
    harness.poll()
    assert harness.next_check() == T0 + timedelta(seconds=5400)


def test_skip_hours_and_days_are_respected(harness: Harness) -> None:
    # T0 is Monday 10:00 UTC; the next poll would be 10:10, inside skipped hours 10-12.
    skips = b"<skipHours><hour>10</hour><hour>11</hour><hour>12</hour></skipHours>"
    body = FEED.replace(b"<title>t</title>", b"<title>t</title>" + skips)
    harness.server.route("/f.xml", (200, {}, body))
    harness.add()
    harness.poll()
    assert harness.next_check() == T0.replace(hour=13)
    days = Hints(skip_days=frozenset({"Monday", "Tuesday"}))
    assert decide.next_check(T0, Rhythm(600), days) == datetime(2026, 3, 4, 0, tzinfo=UTC)


def test_floor_and_jitter() -> None:
    rhythm = Rhythm(interval=10, floor=60, jitter=0.1)
    assert decide.next_check(T0, rhythm, Hints()) == T0 + MINUTE
    spread = Rhythm(interval=600, jitter=0.1)
    assert decide.next_check(T0, spread, Hints(), rand=0.5) == T0 + timedelta(seconds=630)
    assert decide.next_check(T0, spread, Hints(), rand=0.999) < T0 + timedelta(seconds=661)


def test_expires_is_read_against_the_servers_date() -> None:
    headers = {"date": "Mon, 02 Mar 2026 09:00:00 GMT", "expires": "Mon, 02 Mar 2026 12:00:00 GMT"}
    hints = decide.hints_from(headers, T0)
    assert hints.expires_in == 3 * 3600
    assert decide.hints_from({"cache-control": "no-cache, max-age=999"}, T0).max_age is None


def test_a_skipped_entry_is_retried_despite_validators(harness: Harness) -> None:
    """An entry whose page failed is not stranded behind a 304: a later poll retries it from
    what the store kept (issue 16 item 1; before, the feed's validators were dropped)."""
    state = {"page": 500}
    body = rss(item("a", harness.server.url("/page.html"), "a"))

    def feed(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304, {"ETag": '"v1"'})
        return Response(200, {"ETag": '"v1"'}, body)

    text = "A paragraph of real article text that is long enough to count. " * 8
    page = f"<html><head><title>T</title></head><body><article><p>{text}</p></article></body>"

    def article(_request: Request) -> Response:
        return Response(state["page"], {"Content-Type": "text/html"}, page.encode())

    harness.server.route("/f.xml", feed)
    harness.server.route("/page.html", article)
    harness.store.sync_feeds([FeedConfig("f", harness.server.url("/f.xml"), "repost", 600)], T0)
    record = feed_named(harness.store, "f")
    assert record is not None
    job = FeedJob(
        record,
        FeedSpec("f", record.url, format=ArchiveFormat.REPOST, source="s"),
        600,
        trusted=True,
    )

    def poll() -> PollResult:
        async def go() -> PollResult:
            fresh = feed_named(harness.store, "f")
            assert fresh is not None
            async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                pipeline = Pipeline(harness.store, fetcher, harness.root, clock=harness.clock)
                return await pipeline.poll(replace(job, record=fresh))

        return asyncio.run(go())

    first = poll()
    assert first.outcome == "ok" and first.archived == 0 and first.warnings
    stored = feed_named(harness.store, "f")
    # The failed entry is kept by the store, so the feed keeps its validators.
    assert stored is not None and stored.etag == '"v1"'
    state["page"] = 200
    harness.clock.now = T0 + timedelta(minutes=16)  # after the first retry delay (15 min)
    second = poll()
    assert (second.outcome, second.archived) == ("not_modified", 1)
    assert [
        r.headers.get("if-none-match") for r in harness.server.requests if r.path == "/f.xml"
    ] == [None, '"v1"']
