"""Entry identity, revisions, file numbers and archive paths."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from ingestd.errors import StorageError
from ingestd.naming import FIRST_FILE_ID
from ingestd.store import EntryMatch, FeedConfig, NewEntry, Store
from ingestd.store.entries import MAX_KEY_BYTES
from tests.store.conftest import NOW
from tests.storehelp import entry_with_key, feed_named, revise, store_entry

LATER = NOW + timedelta(hours=2)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def feed_id(store: Store) -> int:
    store.sync_feeds([FeedConfig("a", "https://a.example/feed", "feed", 1800)], now=NOW)
    feed = feed_named(store, "a")
    assert feed is not None
    return feed.id


def test_add_entry_stores_fields_and_revision_one(store: Store, feed_id: int) -> None:
    entry = store_entry(store,
        feed_id, "guid:1", content_hash=_hash("v1"), first_seen_at=NOW, guid="1",
        link="https://a.example/1", title="標題", published_at=None, published_is_fallback=True,
    )  # fmt: skip
    assert entry == entry_with_key(store, feed_id, "guid:1") == store.get_entry(entry.id)
    assert (entry.guid, entry.link, entry.title) == ("1", "https://a.example/1", "標題")
    assert entry.published_is_fallback and entry.first_seen_at == NOW
    assert entry.current_revision == 1 and entry.archive_path is None and entry.file_id is None
    [revision] = store.revisions(entry.id)
    assert (revision.revision, revision.content_hash, revision.seen_at) == (1, _hash("v1"), NOW)


def test_same_identity_twice_is_one_entry(store: Store, feed_id: int) -> None:
    first = store_entry(
        store, feed_id, "k", content_hash=_hash("v1"), first_seen_at=NOW, title="one"
    )
    again = store_entry(store, feed_id, "k", content_hash=_hash("v2"), first_seen_at=LATER)
    assert again == first
    assert store.entry_counts() == {"a": 1}
    assert len(store.revisions(first.id)) == 1, "a duplicate must not add a revision"


def test_identity_is_per_feed(store: Store, feed_id: int) -> None:
    store.sync_feeds(
        [FeedConfig("a", "https://a.example/feed", "feed", 1800),
         FeedConfig("b", "https://b.example/feed", "feed", 1800)], now=NOW,
    )  # fmt: skip
    other = feed_named(store, "b")
    assert other is not None
    one = store_entry(store, feed_id, "same", content_hash=_hash("x"), first_seen_at=NOW)
    two = store_entry(store, other.id, "same", content_hash=_hash("x"), first_seen_at=NOW)
    assert one.id != two.id
    assert store.entry_counts() == {"a": 1, "b": 1}
    assert entry_with_key(store, other.id, "missing") is None


def test_long_identity_keys_are_stored_hashed_and_still_found(store: Store, feed_id: int) -> None:
    key = "guid|" + "長" * MAX_KEY_BYTES  # 3 bytes per character in UTF-8
    entry = store_entry(store, feed_id, key, content_hash=_hash("x"), first_seen_at=NOW)
    assert entry.identity_key.startswith("sha256:")
    assert entry_with_key(store, feed_id, key) == entry
    assert store_entry(store, feed_id, key, content_hash=_hash("y"), first_seen_at=NOW) == entry


def test_revisions_only_when_the_content_changes(store: Store, feed_id: int) -> None:
    entry = store_entry(store, feed_id, "k", content_hash=_hash("v1"), first_seen_at=NOW)
    assert revise(store, entry.id, _hash("v1"), LATER) is None
    assert revise(store, entry.id, _hash("v2"), LATER) == 2
    assert revise(store, entry.id, _hash("v2"), LATER) is None
    # Back to old content is still a change from the latest revision.
    assert revise(store, entry.id, _hash("v1"), LATER) == 3
    assert [r.content_hash for r in store.revisions(entry.id)] == [
        _hash("v1"), _hash("v2"), _hash("v1"),
    ]  # fmt: skip
    current = store.get_entry(entry.id)
    assert current is not None and current.current_revision == 3
    assert store.entry_counts() == {"a": 1}
    with pytest.raises(StorageError, match="no entry with id 999999"):
        revise(store, 999999, _hash("v1"), LATER)


def test_file_ids_count_down_per_feed(store: Store, feed_id: int) -> None:
    assert store.next_file_id(feed_id) == FIRST_FILE_ID == 1048575
    for n in range(3):
        file_id = store.next_file_id(feed_id)
        store_entry(store, feed_id, f"k{n}", content_hash=_hash(str(n)), first_seen_at=NOW,
                    archive_path=f"a/{file_id}.md", file_id=file_id)  # fmt: skip
    assert store.next_file_id(feed_id) == 1048572
    assert sorted(dict(store.archive_paths_in_order()), reverse=True) == [
        "a/1048575.md", "a/1048574.md", "a/1048573.md",
    ]  # fmt: skip


def test_archive_path_and_file_id_are_unique(store: Store, feed_id: int) -> None:
    store_entry(store, feed_id, "one", content_hash=_hash("1"), first_seen_at=NOW,
                archive_path="a/1048575.md", file_id=1048575)  # fmt: skip
    two = store_entry(store, feed_id, "two", content_hash=_hash("2"), first_seen_at=NOW)
    with pytest.raises(StorageError, match="constraint violated"):
        store_entry(store, feed_id, "three", content_hash=_hash("3"), first_seen_at=NOW,
                    archive_path="a/1048575.md", file_id=1048574)  # fmt: skip
    with pytest.raises(StorageError, match="constraint violated"):
        store_entry(store, feed_id, "three", content_hash=_hash("3"), first_seen_at=NOW,
                    archive_path="a/other.md", file_id=1048575)  # fmt: skip
    still = store.get_entry(two.id)
    assert still is not None and still.archive_path is None
    assert entry_with_key(store, feed_id, "three") is None, "a refused file leaves no row"


def test_entries_without_file_and_archive_paths(store: Store, feed_id: int) -> None:
    written = store_entry(store, feed_id, "w", content_hash=_hash("w"), first_seen_at=NOW,
                          archive_path="a/1048575.md", file_id=1048575)  # fmt: skip
    pending = store_entry(store, feed_id, "p", content_hash=_hash("p"), first_seen_at=NOW)
    assert [e.id for e in store.entries_without_file()] == [pending.id]
    assert [e.id for e in store.entries_without_file(feed_id)] == [pending.id]
    assert store.entries_without_file(feed_id + 1000) == []
    assert dict(store.archive_paths_in_order()) == {"a/1048575.md": written.id}


def test_entry_counts_include_empty_feeds(store: Store, feed_id: int) -> None:
    store.sync_feeds(
        [FeedConfig("a", "https://a.example/feed", "feed", 1800),
         FeedConfig("empty", "https://e.example/feed", "feed", 1800)], now=NOW,
    )  # fmt: skip
    for key in ("x", "y"):
        store_entry(store, feed_id, key, content_hash=_hash(key), first_seen_at=NOW)
    assert store.entry_counts() == {"a": 2, "empty": 0}


def test_add_entry_with_its_file_in_one_step(store: Store, feed_id: int) -> None:
    entry = store_entry(store,
        feed_id, "guid:f", content_hash=_hash("v"), first_seen_at=NOW,
        archive_path="articles/a/1048575.md", file_id=FIRST_FILE_ID,
    )  # fmt: skip
    assert (entry.archive_path, entry.file_id) == ("articles/a/1048575.md", FIRST_FILE_ID)
    assert store.next_file_id(feed_id) == FIRST_FILE_ID - 1


def test_poll_lookup_matches_by_key_or_link_with_latest_hash(store: Store, feed_id: int) -> None:
    one = store_entry(
        store,
        feed_id,
        "guid:1",
        content_hash=_hash("v1"),
        first_seen_at=NOW,
        link="https://a.example/1",
    )
    revise(store, one.id, _hash("v2"), LATER)
    two = store_entry(
        store,
        feed_id,
        "guid:2",
        content_hash=_hash("w"),
        first_seen_at=NOW,
        link="https://a.example/2",
    )
    store_entry(store, feed_id, "guid:3", content_hash=_hash("x"), first_seen_at=NOW)
    found = store.poll_lookup(feed_id, ["guid:1", "guid:404"], ["https://a.example/2", ""])
    assert sorted(found.matches) == [
        EntryMatch(one.id, "guid:1", "https://a.example/1", _hash("v2"), 2),
        EntryMatch(two.id, "guid:2", "https://a.example/2", _hash("w"), 1),
    ]
    assert found.next_file_id == FIRST_FILE_ID
    assert store.poll_lookup(feed_id, [], []).matches == []
    # Another feed's entries never match.
    store.sync_feeds([FeedConfig("b", "https://b.example/feed", "feed", 1800)], now=NOW)
    other = feed_named(store, "b")
    assert other is not None
    assert store.poll_lookup(other.id, ["guid:1"], ["https://a.example/1"]).matches == []


def test_poll_lookup_gives_back_the_callers_long_key(store: Store, feed_id: int) -> None:
    # Keys over 1 kB are stored as their hash; the poll compares its own keys.
    key = "guid:" + "長" * MAX_KEY_BYTES
    entry = store_entry(store, feed_id, key, content_hash=_hash("x"), first_seen_at=NOW)
    [match] = store.poll_lookup(feed_id, [key], []).matches
    assert (match.entry_id, match.identity_key) == (entry.id, key)


def test_poll_lookup_next_file_id_counts_down_and_runs_out(store: Store, feed_id: int) -> None:
    store_entry(store, feed_id, "k", content_hash=_hash("k"), first_seen_at=NOW,
                archive_path="a/1048575.md", file_id=FIRST_FILE_ID)  # fmt: skip
    assert store.poll_lookup(feed_id, [], []).next_file_id == FIRST_FILE_ID - 1
    store_entry(store, feed_id, "last", content_hash=_hash("l"), first_seen_at=NOW,
                archive_path="a/0.md", file_id=0)  # fmt: skip
    assert store.poll_lookup(feed_id, ["k"], []).next_file_id is None
    with pytest.raises(StorageError, match="used every file number"):
        store.next_file_id(feed_id)


def test_delete_entry_forgets_entry_and_revisions(store: Store, feed_id: int) -> None:
    entry = store_entry(store, feed_id, "guid:d", content_hash=_hash("v"), first_seen_at=NOW)
    store.delete_entry(entry.id)
    assert entry_with_key(store, feed_id, "guid:d") is None
    assert store.revisions(entry.id) == []


def _new(key: str, file_id: int, folder: str = "a") -> NewEntry:
    return NewEntry(
        identity_key=key,
        content_hash=_hash(key),
        guid=key,
        link=None,
        title=key,
        published_at=NOW,
        published_is_fallback=False,
        archive_path=f"articles/{folder}/{file_id}.md",
        file_id=file_id,
    )


def test_entry_groups_of_several_feeds_share_one_call(store: Store, feed_id: int) -> None:
    store.sync_feeds(
        [
            FeedConfig("a", "https://a.example/feed", "feed", 1800),
            FeedConfig("b", "https://b.example/feed", "feed", 1800),
        ],
        now=NOW,
    )
    other = feed_named(store, "b")
    assert other is not None
    store.add_entry_groups([(feed_id, [_new("k1", FIRST_FILE_ID)], NOW)])
    assert (store.next_file_id(feed_id), store.next_file_id(other.id)) == (
        FIRST_FILE_ID - 1,
        FIRST_FILE_ID,
    )
    inserted = store.add_entry_groups(
        [
            (feed_id, [_new("k1", 7), _new("k2", FIRST_FILE_ID - 1)], NOW),
            (other.id, [_new("k1", FIRST_FILE_ID, "b")], LATER),
        ],
        archive_id="x",
        archived_by="me",
    )
    # The repeated identity of feed a is skipped; the same key in feed b is its own.
    assert inserted == [{"k2"}, {"k1"}]
    mine = entry_with_key(store, other.id, "k1")
    assert mine is not None and mine.first_seen_at == LATER and mine.archived_by == "me"
    assert [r.content_hash for r in store.revisions(mine.id)] == [_hash("k1")]
    assert store.add_entry_groups([(feed_id, [], NOW)]) == [set()]


def test_index_entries_are_each_feeds_newest_files_of_one_archive(
    store: Store, feed_id: int
) -> None:
    store.sync_feeds(
        [FeedConfig("a", "https://a.example/feed", "feed", 1800),
         FeedConfig("b", "https://b.example/feed", "feed", 1800)], now=NOW,
    )  # fmt: skip
    other = feed_named(store, "b")
    assert other is not None
    ids = [FIRST_FILE_ID - n for n in range(5)]
    store.add_entry_groups(
        [(feed_id, [_new(f"k{n}", file_id) for n, file_id in enumerate(ids)], NOW),
         (other.id, [_new("k0", FIRST_FILE_ID, "b")], NOW)],
        archive_id="here",
    )  # fmt: skip
    store.add_entry_groups([(feed_id, [_new("elsewhere", 5)], NOW)], archive_id="there")
    found = store.index_entries([feed_id, other.id], "here", limit=3)
    # The three lowest file numbers (the newest files), this archive folder's only.
    assert sorted(e.archive_path for e in found[feed_id]) == sorted(
        f"articles/a/{file_id}.md" for file_id in ids[-3:]
    )
    assert [(e.title, e.archive_path) for e in found[other.id]] == [
        ("k0", f"articles/b/{FIRST_FILE_ID}.md")
    ]
    assert found[feed_id][0].published_at is not None
    assert found[feed_id][0].published_at.tzinfo is not None
    assert store.index_entries([feed_id], "nowhere", limit=3) == {}
