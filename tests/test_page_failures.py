"""Issue 16, item 1: article pages that fail are counted, retried with back-off, given up
visibly, and make ``ingestd fetch`` exit 1. Real HTTP on loopback, an injected clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestd import decide
from ingestd.cli import main
from ingestd.fetch import Fetcher, NetworkGuard
from ingestd.metrics import Metrics
from ingestd.pipeline import FeedJob, Pipeline, PollResult
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import ArchiveFormat, FeedSpec, PageFailure
from tests.loopback import LoopbackServer, Request, Response
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import feed_named
from tests.test_fetch_e2e import item, rss

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXT = "A paragraph of real article text that is long enough to count as one. " * 8
POLICY = decide.PageRetry(first_delay=900, max_delay=86400, give_up_after=3 * 86400)


def page(title: str) -> bytes:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{TEXT}</p></article></body></html>"
    ).encode()


class Site:
    """A repost feed of three entries whose pages answer what ``status`` says."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.status = {n: 404 for n in range(3)}
        items = "".join(item(f"t{n}", server.url(f"/p/{n}.html"), f"g{n}") for n in range(3))
        self.body = rss(items)
        server.route("/f.xml", self.feed)
        for n in range(3):
            server.route(f"/p/{n}.html", self.page_handler(n))

    def feed(self, request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304, {"ETag": '"v1"'})
        return Response(200, {"ETag": '"v1"', "Content-Type": "application/rss+xml"}, self.body)

    def page_handler(self, n: int) -> Any:
        def handle(_request: Request) -> Response:
            status = self.status[n]
            body = page(f"t{n}") if status == 200 else b"not here"
            return Response(status, {"Content-Type": "text/html; charset=utf-8"}, body)

        return handle

    def page_hits(self) -> int:
        return sum(self.server.hits[f"/p/{n}.html"] for n in range(3))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url) as opened:
        yield opened


def poll(store: Store, root: Path, clock: Clock) -> PollResult:
    record = feed_named(store, "r")
    assert record is not None
    spec = FeedSpec("r", record.url, format=ArchiveFormat.REPOST, source="s")
    job = FeedJob(record, spec, 600, trusted=True, retry=POLICY)

    async def go() -> PollResult:
        async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
            pipeline = Pipeline(store, fetcher, root, clock=clock, rand=lambda: 0.0)
            return await pipeline.poll(job)

    return asyncio.run(go())


def test_failed_pages_are_counted_retried_with_back_off_and_given_up(
    store: Store, loopback: LoopbackServer, tmp_path: Path
) -> None:
    """Item 1: page failures are first-class: counted per poll and per feed, retried on later
    polls with back-off (also behind a 304), given up after the configured span."""
    site = Site(loopback)
    clock = Clock()
    store.sync_feeds([FeedConfig("r", loopback.url("/f.xml"), "repost", 600)], T0)
    root = tmp_path / "archive"

    first = poll(store, root, clock)
    assert (first.outcome, first.new_entries, first.archived) == ("ok", 3, 0)
    assert first.pages_failed == 3 and first.entries_waiting == 3
    assert all("404" in p.error for p in first.page_problems)
    assert [p.next_retry_at for p in first.page_problems] == [T0 + timedelta(minutes=15)] * 3
    record = feed_named(store, "r")
    assert record is not None and record.etag == '"v1"'  # the failures are kept, not the feed
    counts = store.failure_counts()["r"]
    assert (counts.waiting, counts.given_up) == (3, 0) and "404" in (counts.last_error or "")

    # Too early for a retry: the feed answers 304 and no page is asked for.
    clock.now = T0 + timedelta(minutes=10)
    early = poll(store, root, clock)
    assert early.outcome == "not_modified" and site.page_hits() == 3
    assert (early.pages_failed, early.entries_waiting) == (0, 3)

    # Due: retried from what the store kept, although the feed is not modified.
    site.status[0] = site.status[1] = 200
    clock.now = T0 + timedelta(minutes=20)
    second = poll(store, root, clock)
    assert second.outcome == "not_modified" and second.archived == 2
    assert (second.pages_failed, second.entries_waiting) == (1, 1)
    [problem] = second.page_problems
    assert problem.attempts == 2
    assert problem.next_retry_at == clock.now + timedelta(minutes=30)  # doubled
    assert sorted(p.name for p in (root / "articles" / "r").iterdir()) == [
        "1048574.md",
        "1048575.md",
    ]
    assert set(store.page_failures(feed_named(store, "r").id)) == {"guid:g2"}  # type: ignore[union-attr]

    # Three days of failing: given up, with the reason, and never asked for again.
    clock.now = T0 + timedelta(days=3, minutes=1)
    third = poll(store, root, clock)
    [gone] = third.page_problems
    assert gone.given_up is not None and "3 days" in gone.given_up and "404" in gone.given_up
    assert (third.entries_waiting, third.entries_given_up) == (0, 1)
    hits = site.page_hits()
    clock.now = T0 + timedelta(days=9)
    later = poll(store, root, clock)
    assert site.page_hits() == hits and later.entries_given_up == 1 and not later.page_problems

    # `ingestd entries retry` makes it due again; the page is back, so it is archived.
    assert store.retry_failed_entries(["r"], clock.now) == 1
    site.status[2] = 200
    last = poll(store, root, clock)
    assert last.archived == 1 and (last.entries_waiting, last.entries_given_up) == (0, 0)
    assert store.failure_counts().get("r") is None


def test_page_retry_policy_is_pure_back_off_and_a_give_up_span() -> None:
    """Item 1: the per-entry retry rule (decide.page_failed/page_due), without I/O."""
    one = decide.page_failed(None, "HTTP 404", T0, POLICY)
    assert one == PageFailure(1, T0, T0, "HTTP 404", T0 + timedelta(minutes=15))
    assert not decide.page_due(one, T0 + timedelta(minutes=14))
    assert decide.page_due(one, T0 + timedelta(minutes=15))
    moments = [T0]
    failure = one
    for hours in (1, 2, 5, 10, 20, 40, 70):
        moments.append(T0 + timedelta(hours=hours))
        failure = decide.page_failed(failure, "HTTP 500", moments[-1], POLICY)
    assert failure.attempts == 8 and failure.given_up_reason is None
    assert failure.next_retry_at == moments[-1] + timedelta(days=1)  # capped at max_delay
    done = decide.page_failed(failure, "HTTP 500", T0 + timedelta(days=3), POLICY)
    assert done.next_retry_at is None and not decide.page_due(done, T0 + timedelta(days=30))
    assert done.given_up_reason == "failed for 3 days (9 attempts); last: HTTP 500"
    gone = decide.page_failed(None, "HTTP 410 Gone", T0, POLICY, status=410)
    assert gone.given_up_reason is not None and "410" in gone.given_up_reason


def test_metrics_count_page_failures_and_unarchived_entries() -> None:
    """Item 1: metrics for failed pages and entries waiting or given up, per feed."""
    from ingestd.pipeline import PageProblem

    metrics = Metrics()
    problem = PageProblem("http://x/1", "HTTP 404", 1, T0, None)
    metrics.observe(
        PollResult(
            feed="a", outcome="ok", pages_failed=2, entries_waiting=2, page_problems=(problem,) * 2
        )
    )
    metrics.observe(PollResult(feed="b", outcome="ok", pages_failed=1, entries_given_up=1))
    metrics.observe(PollResult(feed="a", outcome="not_modified", entries_waiting=1))

    def value(name: str, **labels: str) -> float:
        found = metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    assert value("ingestd_page_failures_total") == 3
    assert value("ingestd_entries_unarchived", state="waiting") == 1
    assert value("ingestd_entries_unarchived", state="given_up") == 1


def feed_toml(root: Path, database: str, url: str) -> Path:
    config = root / "ingestd.toml"
    config.write_text(
        f'database = "{database}"\narchive_dir = "archive"\n'
        '[fetch]\ntimeout = 10\nallow_private = ["127.0.0.1"]\n'
        f'[[feeds]]\nname = "r"\nurl = "{url}"\nformat = "repost"\nsource = "s"\n',
        encoding="utf-8",
    )
    return config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


def test_fetch_exits_1_and_status_shows_failed_pages_until_retried(
    loopback: LoopbackServer, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 1 from the command line: `fetch` exits 1 and says which entries failed;
    `status` and `status --json` show them per feed; `entries failed` lists them and
    `entries retry` makes them due again."""
    site = Site(loopback)
    config = str(feed_toml(tmp_path, database_url, loopback.url("/f.xml")))
    code, out = run(capsys, "fetch", "--config", config, "--json")
    summary = json.loads(out)
    assert code == 1
    assert (summary["ok"], summary["archived"], summary["entries_failed"]) == (1, 0, 3)
    assert {e["link"] for e in summary["entry_errors"]} == {
        loopback.url(f"/p/{n}.html") for n in range(3)
    }
    code, out = run(capsys, "fetch", "--config", config)
    assert code == 0  # nothing was due for a retry: nothing failed in this run
    assert "3 waiting for a retry" in out

    code, out = run(capsys, "status", "--config", config, "--json")
    [row] = json.loads(out)["feeds"]
    assert (row["entries_waiting"], row["entries_given_up"]) == (3, 0)
    assert "404" in row["last_entry_error"] and "3 entries not archived" in row["state"]
    code, out = run(capsys, "status", "--config", config)
    assert "3 entries not archived" in out

    code, out = run(capsys, "entries", "failed", "--config", config)
    assert code == 0 and out.count("HTTP 404") == 3 and loopback.url("/p/1.html") in out
    code, out = run(capsys, "entries", "retry", "--config", config)
    assert code == 0 and "3 entries" in out
    site.status = {n: 200 for n in range(3)}
    code, out = run(capsys, "fetch", "--config", config, "--json")
    assert code == 0 and json.loads(out)["archived"] == 3
    code, out = run(capsys, "status", "--config", config, "--json")
    [row] = json.loads(out)["feeds"]
    assert (row["entries_waiting"], row["entries_given_up"]) == (0, 0)
    assert row["state"] == "not modified"  # the feed said 304; the entries came from the store
