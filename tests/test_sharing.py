"""Several daemons on one database and one archive: files, reconciliation, leases."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd import archive
from ingestd.fetch import Fetcher, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline
from ingestd.store import FeedConfig, Store, open_store
from ingestd.types import FeedSpec
from tests.loopback import LoopbackServer
from tests.storehelp import entry_with_key, feed_named, set_feed_state, store_entry
from tests.test_fetch_e2e import item, rss

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_write_new_never_replaces(tmp_path: Path) -> None:
    first = archive.write_new(tmp_path, "articles/a/1.md", "first")
    assert first is not None and first.read_text() == "first"
    assert archive.write_new(tmp_path, "articles/a/1.md", "second") is None
    assert first.read_text() == "first"
    assert [p.name for p in first.parent.iterdir()] == ["1.md"]  # no temporary left


def test_archive_identity_is_made_once_and_shared(tmp_path: Path) -> None:
    one = archive.archive_identity(tmp_path / "archive")
    assert len(one) == 32 and archive.archive_identity(tmp_path / "archive") == one
    assert archive.archive_identity(tmp_path / "other") != one


@pytest.fixture
def store(database_url: str) -> Store:
    opened = open_store(database_url)
    opened.sync_feeds([FeedConfig("a", "https://a.example/", "feed", 60)], NOW)
    return opened


def pipeline(store: Store, root: Path, owner: str = "me:1:x") -> Pipeline:
    return Pipeline(store, Fetcher(), root, clock=lambda: NOW, owner=owner)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_reconcile_frees_leases_of_dead_local_processes(store: Store, tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = f"{host}:{dead_pid()}:abcd"
    alive = f"{host}:{os.getpid()}:efgh"
    remote = f"elsewhere.example:{dead_pid()}:ijkl"
    for owner in (dead, alive, remote):
        store.sync_feeds(
            [FeedConfig(n, f"https://{n}.example/", "feed", 60) for n in ("a", "b", "c")], NOW
        )
        store.lease_due_feeds(owner, NOW, 300, limit=1)
    pipeline(store, tmp_path / "archive").reconcile()
    assert set(store.active_leases(NOW).values()) == {alive, remote}


def test_reconcile_leaves_fresh_files_of_busy_feeds(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    fresh = archive.write_atomic(root, "articles/a/1048575.md", "being committed")
    host = socket.gethostname()
    store.lease_due_feeds(f"{host}:{os.getpid()}:other", NOW, 300, limit=1)
    mine = pipeline(store, root)
    assert mine.reconcile(settle_seconds=60).orphans_moved == ()
    assert fresh.exists()
    old = time.time() - 120
    os.utime(fresh, (old, old))
    assert mine.reconcile(settle_seconds=60).orphans_moved == ("articles/a/1048575.md",)
    assert not fresh.exists()


def test_reconcile_keeps_rows_of_other_archives(store: Store, tmp_path: Path) -> None:
    feed = feed_named(store, "a")
    assert feed is not None
    digest = hashlib.sha256(b"x").hexdigest()
    store_entry(
        store,
        feed.id,
        "guid:far",
        content_hash=digest,
        first_seen_at=NOW,
        archive_path="articles/a/1048575.md",
        file_id=1048575,
        archive_id="another-machine",
        archived_by="far:1:x",
    )
    result = pipeline(store, tmp_path / "archive").reconcile()
    assert result.rows_dropped == ()
    assert entry_with_key(store, feed.id, "guid:far") is not None


def test_pipeline_skips_taken_file_names(store: Store, tmp_path: Path) -> None:
    """A name already on disk (another daemon's, or a crash's) is never overwritten."""
    root = tmp_path / "archive"
    squatter = archive.write_atomic(root, "articles/a/1048575.md", "someone else's")
    with LoopbackServer() as server:
        server.route("/f.xml", (200, {}, rss(item("t", "http://x.example/1", "1"))))
        feed = feed_named(store, "a")
        assert feed is not None
        record = set_feed_state(store, feed.id, url=server.url("/f.xml"))

        async def go() -> None:
            async with Fetcher(guard=NetworkGuard(["127.0.0.1"])) as fetcher:
                line = Pipeline(store, fetcher, root, clock=lambda: NOW, owner="me:1:x")
                result = await line.poll(
                    FeedJob(record, FeedSpec("a", record.url), 60, trusted=True)
                )
                assert result.archived == 1

        asyncio.run(go())
    assert squatter.read_text() == "someone else's"
    entry = entry_with_key(store, record.id, "guid:1")
    assert entry is not None and entry.archive_path == "articles/a/1048574.md"
    assert entry.archived_by == "me:1:x"
    assert entry.archive_id == archive.archive_identity(root)


def test_young_temporaries_of_a_live_neighbour_survive_start_up(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    folder = root / "articles" / "b"
    folder.mkdir(parents=True)
    young = folder / f"{archive.TEMP_MARK}neighbour"
    young.write_text("being written")
    old = folder / f"{archive.TEMP_MARK}crashed"
    old.write_text("half")
    os.utime(old, (time.time() - 600, time.time() - 600))
    beside_id = root / f"{archive.TEMP_MARK}id"
    beside_id.write_text("an id in the making")
    store.lease_due_feeds(f"{socket.gethostname()}:{os.getpid()}:other", NOW, 300, limit=1)
    result = pipeline(store, root).reconcile(settle_seconds=60)
    assert result.temporaries_removed == 1
    assert young.exists() and beside_id.exists() and not old.exists()
    # Alone (no other live daemon), every temporary in the feed folders is a leftover.
    store.release_leases_of([f"{socket.gethostname()}:{os.getpid()}:other"])
    assert pipeline(store, root).reconcile(settle_seconds=60).temporaries_removed == 1
    assert not young.exists() and beside_id.exists()
