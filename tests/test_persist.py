"""Persister.save_many: several feeds' batches archived with one sync and one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd import archive
from ingestd.errors import ArchiveError
from ingestd.persist import Pending, Persister, Save
from ingestd.store import FeedConfig, FeedRecord, Store, open_store

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def pending(key: str) -> Pending:
    return Pending(identity_key=key, content_hash=key * 4, text=f"text of {key}\n", guid=key,
                   link=None, title=key, published=NOW, published_is_fallback=False)


@pytest.fixture
def store(database_url: str) -> Store:
    opened = open_store(database_url)
    opened.sync_feeds([FeedConfig(n, f"https://{n}.example/", "feed", 60) for n in "abc"], NOW)
    return opened


def feeds(store: Store) -> dict[str, FeedRecord]:
    return {feed.name: feed for feed in store.list_feeds()}


def test_batches_of_several_feeds_are_archived_together(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real = archive.sync_batches
    monkeypatch.setattr(archive, "sync_batches",
                        lambda batches: (syncs.append(len(batches)), real(batches))[1])
    by_name = feeds(store)
    persister = Persister(store, tmp_path, "me:1:x", lambda: NOW)
    counts = persister.save_many([
        Save(by_name["a"], "a", [pending("1"), pending("2")], NOW),
        Save(by_name["b"], "b", [], NOW),
        Save(by_name["c"], "c", [pending("1")], NOW),
    ])
    assert counts == [2, 0, 1]
    assert syncs == [2]  # one sync for both folders
    assert archive.archived_files(tmp_path) == {
        "articles/a/1048575.md", "articles/a/1048574.md", "articles/c/1048575.md"}
    assert (tmp_path / "articles/a/1048575.md").read_text() == "text of 1\n"
    # A second group continues each feed's numbering below its lowest file.
    assert persister.save_many([Save(by_name["a"], "a", [pending("3")], NOW)]) == [1]
    entry = store.find_entry(by_name["a"].id, "3")
    assert entry is not None and entry.archive_path == "articles/a/1048573.md"


def test_a_failing_batch_stores_nothing_of_its_group(store: Store, tmp_path: Path) -> None:
    by_name = feeds(store)
    # Feed c's folder cannot be made: a file stands where it should be.
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "c").write_text("in the way")
    persister = Persister(store, tmp_path, "me:1:x", lambda: NOW)
    with pytest.raises(ArchiveError):
        persister.save_many([Save(by_name["a"], "a", [pending("1")], NOW),
                             Save(by_name["c"], "c", [pending("1")], NOW)])
    assert archive.archived_files(tmp_path) == {"articles/c"}  # feed a's file went again
    assert store.find_entry(by_name["a"].id, "1") is None
    assert store.entry_counts() == {"a": 0, "b": 0, "c": 0}
