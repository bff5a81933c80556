"""Due-feed leases: several owners share one database and never poll a feed twice."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from ingestd.store import FeedConfig, Store, open_store
from tests.store.conftest import NOW, pg_connect, pg_url
from tests.storehelp import due_feeds, feed_named, set_feed_state

FEEDS = [FeedConfig(f"f{i:02d}", f"https://f{i}.example/feed", "feed", 60) for i in range(24)]


def test_a_leased_feed_is_not_leased_again(store: Store) -> None:
    store.sync_feeds(FEEDS[:3], now=NOW)
    first = store.lease_due_feeds("one", NOW, lease_seconds=60, limit=2)
    assert [f.name for f in first] == ["f00", "f01"]
    assert all(f.lease_owner == "one" and f.lease_expires_at == NOW + timedelta(seconds=60)
               for f in first)  # fmt: skip
    second = store.lease_due_feeds("two", NOW, lease_seconds=60, limit=10)
    assert [f.name for f in second] == ["f02"]
    assert store.lease_due_feeds("three", NOW + timedelta(seconds=59), 60, 10) == []
    assert due_feeds(store, NOW) == []


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    store.sync_feeds(FEEDS[:1], now=NOW)
    [crashed] = store.lease_due_feeds("crashed", NOW, lease_seconds=60)
    [taken] = store.lease_due_feeds("healthy", NOW + timedelta(seconds=60), lease_seconds=60)
    assert taken.id == crashed.id and taken.lease_owner == "healthy"
    # The old owner's release must not free the new owner's lease.
    assert not store.release_lease(crashed.id, "crashed")
    assert store.release_lease(taken.id, "healthy")
    released = store.get_feed_by_id(taken.id)
    assert released is not None and released.lease_owner is None


def test_a_lease_is_renewed_only_by_its_owner(store: Store) -> None:
    store.sync_feeds(FEEDS[:1], now=NOW)
    [feed] = store.lease_due_feeds("long-poll", NOW, lease_seconds=60)
    assert store.renew_leases([feed.id], "long-poll", NOW + timedelta(seconds=40), 60) == {feed.id}
    # The renewed lease outlives the first one: nobody can take the feed at NOW + 60 s.
    assert store.lease_due_feeds("other", NOW + timedelta(seconds=60), 60) == []
    [taken] = store.lease_due_feeds("other", NOW + timedelta(seconds=100), 60)
    assert not store.renew_leases([feed.id], "long-poll", NOW + timedelta(seconds=101), 60)
    held = store.get_feed_by_id(taken.id)
    assert held is not None and held.lease_owner == "other"


def test_feeds_not_yet_due_or_disabled_are_not_leased(store: Store) -> None:
    store.sync_feeds(FEEDS[:3], now=NOW)
    later = feed_named(store, "f00")
    assert later is not None
    set_feed_state(store, later.id, next_check_at=NOW + timedelta(hours=1))
    store.disable_feed("f01", "test")
    assert [f.name for f in store.lease_due_feeds("y", NOW + timedelta(minutes=5), 60)] == ["f02"]


def test_concurrent_owners_never_lease_the_same_feed(db_url: str) -> None:
    with open_store(db_url) as setup:
        setup.sync_feeds(FEEDS, now=NOW)
    leased: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def worker(owner: str) -> None:
        with open_store(db_url, migrate=False) as store:
            start.wait()
            mine = leased.setdefault(owner, [])
            while batch := store.lease_due_feeds(owner, NOW, lease_seconds=300, limit=2):
                mine.extend(f.id for f in batch)

    threads = [threading.Thread(target=worker, args=(f"owner{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [feed_id for ids in leased.values() for feed_id in ids]
    assert len(every) == len(FEEDS) and len(set(every)) == len(FEEDS)
    with open_store(db_url, migrate=False) as check:
        owners = {f.id: f.lease_owner for f in check.list_feeds()}
    assert all(owners[feed_id] == owner for owner, ids in leased.items() for feed_id in ids)


def test_postgresql_skips_rows_another_daemon_has_locked(pg_schema: str) -> None:
    db_url = pg_url(pg_schema)
    with open_store(db_url) as store, pg_connect(db_url) as other:
        store.sync_feeds(FEEDS[:3], now=NOW)
        # Another daemon is in the middle of leasing f00.
        other.execute("SELECT id FROM feeds WHERE name = 'f00' FOR UPDATE")
        started = time.monotonic()
        got = store.lease_due_feeds("me", NOW, lease_seconds=60, limit=10)
        elapsed = time.monotonic() - started
        other.rollback()
    assert [f.name for f in got] == ["f01", "f02"]
    assert elapsed < 2, "leasing waited for the locked row instead of skipping it"
