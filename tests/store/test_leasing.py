"""Due-feed leases: several owners share one database and never poll a feed twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import event

from ingestd.store import FeedConfig, FeedRecord, FetchAttempt, Store, open_store
from tests.store.conftest import NOW, pg_connect, pg_url
from tests.storehelp import due_feeds, feed_named, fetch_log, set_feed_state, store_entry

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


def sent_during(store: Store, action: Callable[[], object]) -> list[str]:
    """Every SQL statement ``action`` sends to the database, transaction control too."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def statements_during(store: Store, action: Callable[[], object]) -> list[str]:
    """The SQL statements ``action`` sends to the database, but transaction control (the
    BEGIN IMMEDIATE of SQLite's writes, PostgreSQL's ``SET LOCAL`` of bookkeeping) and
    PostgreSQL's pool ping (an empty query)."""
    return [
        statement
        for statement in sent_during(store, action)
        if statement.strip(" ;") and not statement.startswith(("BEGIN", "SET LOCAL"))
    ]


def test_a_lease_is_one_statement_however_many_feeds_it_takes(store: Store) -> None:
    store.sync_feeds(FEEDS, now=NOW)
    leased: list[object] = []
    sent = statements_during(
        store, lambda: leased.extend(store.lease_due_feeds("one", NOW, 60, limit=20, exclude=[1]))
    )
    # A statement (and a round trip) per leased feed made leasing most of the database's
    # work per poll on PostgreSQL.
    assert len(leased) == 20
    assert len(sent) == 1, sent


def test_an_outcome_gives_back_only_its_owners_leases(store: Store) -> None:
    store.sync_feeds(FEEDS[:3], now=NOW)
    mine = store.lease_due_feeds("me", NOW, lease_seconds=60, limit=2)
    [theirs] = store.lease_due_feeds("other", NOW, lease_seconds=60)
    attempt = FetchAttempt(NOW, 5, 304, "not_modified", 0, 0)
    polls = [(f.id, attempt, {"last_status": 304}) for f in [*mine, theirs]]
    assert store.record_polls(polls, give_back="me") == {f.id for f in mine}  # type: ignore[arg-type]
    after = {f.id: f for f in store.list_feeds()}
    assert all(after[f.id].lease_owner is None for f in mine)
    assert all(after[f.id].lease_expires_at is None for f in mine)
    assert after[theirs.id].lease_owner == "other"
    assert after[theirs.id].lease_expires_at == NOW + timedelta(seconds=60)
    assert all(after[f.id].last_status == 304 for f in [*mine, theirs])
    assert all(len(fetch_log(store, f.id)) == 1 for f in [*mine, theirs])
    # Without give_back, nothing is given back.
    [again] = store.lease_due_feeds("me", NOW, lease_seconds=60, limit=1)
    assert store.record_polls([(again.id, attempt, {})]) == set()
    held = {f.id: f for f in store.list_feeds()}[again.id]
    assert held.lease_owner == "me"


def test_giving_leases_back_with_the_outcomes_adds_no_statement(store: Store) -> None:
    store.sync_feeds(FEEDS, now=NOW)
    leased = store.lease_due_feeds("me", NOW, lease_seconds=60, limit=10)
    attempt = FetchAttempt(NOW, 5, 304, "not_modified", 0, 0)
    polls = [(f.id, attempt, {"last_status": 304}) for f in leased]
    given: set[int] = set()
    sent = statements_during(store, lambda: given.update(store.record_polls(polls, "me")))  # type: ignore[arg-type]
    # The check that the feeds exist, the fetch log, the state (with the lease): a
    # release per poll was a transaction of its own per poll.
    assert given == {f.id for f in leased}
    assert len(sent) == 3, sent
    assert all(f.lease_owner is None for f in store.list_feeds())


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


def test_postgresql_commits_bookkeeping_without_waiting_for_the_disk(pg_schema: str) -> None:
    """Leases and poll outcomes commit with ``synchronous_commit = off``; entries do not."""
    with open_store(pg_url(pg_schema)) as store:
        store.sync_feeds(FEEDS[:2], now=NOW)
        leased: list[FeedRecord] = []
        attempt = FetchAttempt(NOW, 5, 304, "not_modified", 0, 0)

        def bookkeeping() -> None:
            leased.extend(store.lease_due_feeds("me", NOW, lease_seconds=60))
            store.renew_leases([f.id for f in leased], "me", NOW, 60)
            store.record_polls([(f.id, attempt, {}) for f in leased], give_back="me")

        def settings(sent: list[str]) -> list[str]:
            return [statement for statement in sent if statement.startswith("SET LOCAL")]

        assert (
            settings(sent_during(store, bookkeeping)) == ["SET LOCAL synchronous_commit = off"] * 3
        )
        entry = sent_during(store, lambda: store_entry(
            store, leased[0].id, "k", content_hash="h", first_seen_at=NOW,
            archive_path="a/1.txt", file_id=1,
        ))  # fmt: skip
        assert entry and settings(entry) == []  # the entry's transaction waits for its WAL flush
