"""Store support for several daemons: one-off leases, live leases, dead owners, archives."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from ingestd.store import FeedConfig, Store
from tests.store.conftest import NOW
from tests.storehelp import store_entry

LATER = NOW + timedelta(seconds=10)


def _feeds(store: Store, *names: str) -> dict[str, int]:
    store.sync_feeds([FeedConfig(n, f"https://{n}.example/", "feed", 60) for n in names], NOW)
    return {f.name: f.id for f in store.list_feeds()}


def test_lease_feeds_skips_feeds_leased_by_others(store: Store) -> None:
    ids = _feeds(store, "a", "b", "c")
    assert [r.name for r in store.lease_due_feeds("daemon", NOW, 300, limit=1)] == ["a"]
    store.disable_feed("c", "testing")
    assert store.lease_feeds("fetch", list(ids.values()), NOW, 300) == {ids["b"]}
    assert store.active_leases(NOW) == {ids["a"]: "daemon", ids["b"]: "fetch"}
    # Not due (no next check reached) does not matter to a one-off fetch; expiry does.
    assert store.active_leases(NOW + timedelta(seconds=301)) == {}
    assert store.lease_feeds("fetch", [ids["a"]], LATER + timedelta(seconds=300), 300) == {ids["a"]}


def test_release_leases_of_dead_owners(store: Store) -> None:
    _feeds(store, "a", "b")
    store.lease_due_feeds("dead", NOW, 300, limit=1)
    store.lease_due_feeds("alive", NOW, 300, limit=1)
    assert store.release_leases_of(["dead"]) == 1
    assert set(store.active_leases(NOW).values()) == {"alive"}
    assert store.release_leases_of([]) == 0


def test_archive_paths_per_archive_and_archived_by(store: Store) -> None:
    ids = _feeds(store, "a")
    digest = hashlib.sha256(b"x").hexdigest()
    for n, (archive_id, who) in enumerate(
        [("here", "h:1:x"), ("there", "t:2:y"), ("here", "h:1:x")]
    ):
        store_entry(
            store,
            ids["a"],
            f"guid:{n}",
            content_hash=digest,
            first_seen_at=NOW,
            archive_path=f"articles/a/{1048575 - n}.md",
            file_id=1048575 - n,
            archive_id=archive_id,
            archived_by=who,
        )
    assert set(dict(store.archive_paths_in_order("here"))) == {
        "articles/a/1048575.md",
        "articles/a/1048573.md",
    }
    assert len(dict(store.archive_paths_in_order())) == 3
    assert store.archived_by_counts() == {"a": {"h:1:x": 2, "t:2:y": 1}}
