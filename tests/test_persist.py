"""Committing written batches (Persister.save_many, GroupCommit) and start-up repair (Repair)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd import archive
from ingestd.commit import GroupCommit, Pending, Persister, Save
from ingestd.errors import ArchiveError, StorageError
from ingestd.repair import Repair, one_sided
from ingestd.store import FeedConfig, FeedRecord, Store, open_store
from tests.disk import archived_files
from tests.storehelp import entry_with_key, store_entry

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def written(root: Path, folder: str, next_id: int, *keys: str) -> list[Pending]:
    """Files for ``keys`` written as the pool workers write them, as Pending entries."""
    files = archive.write_numbered(root, folder, next_id, [f"text of {key}\n" for key in keys])
    return [
        Pending(
            identity_key=key,
            content_hash=key * 4,
            relative=relative,
            file_id=file_id,
            guid=key,
            link=None,
            title=key,
            published=NOW,
            published_is_fallback=False,
        )
        for key, (relative, file_id) in zip(keys, files, strict=True)
    ]


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
    monkeypatch.setattr(
        archive, "sync_batches", lambda batches: (syncs.append(len(batches)), real(batches))[1]
    )
    by_name = feeds(store)
    persister = Persister(store, tmp_path, "me:1:x")
    top = store.next_file_id(by_name["a"].id)
    counts = persister.save_many(
        [
            Save(by_name["a"], written(tmp_path, "a", top, "1", "2"), NOW),
            Save(by_name["b"], [], NOW),
            Save(by_name["c"], written(tmp_path, "c", top, "1"), NOW),
        ]
    )
    assert counts == [2, 0, 1]
    assert syncs == [2]  # one sync for both folders
    assert archived_files(tmp_path) == {
        "articles/a/1048575.md",
        "articles/a/1048574.md",
        "articles/c/1048575.md",
    }
    assert (tmp_path / "articles/a/1048575.md").read_text() == "text of 1\n"
    # The next number continues below the feed's lowest file.
    next_id = store.next_file_id(by_name["a"].id)
    assert persister.save_many([Save(by_name["a"], written(tmp_path, "a", next_id, "3"), NOW)]) == [
        1
    ]
    entry = entry_with_key(store, by_name["a"].id, "3")
    assert entry is not None and entry.archive_path == "articles/a/1048573.md"


def test_a_failing_group_stores_nothing_and_keeps_its_files_for_a_retry(
    store: Store, tmp_path: Path
) -> None:
    by_name = feeds(store)
    top = store.next_file_id(by_name["a"].id)
    gone = FeedRecord(**{**by_name["c"].__dict__, "id": 10_000})  # no such feed: FK fails
    persister = Persister(store, tmp_path, "me:1:x")
    saves = [
        Save(by_name["a"], written(tmp_path, "a", top, "1"), NOW),
        Save(gone, written(tmp_path, "c", top, "1"), NOW),
    ]
    with pytest.raises(StorageError):
        persister.save_many(saves)
    assert store.entry_counts() == {"a": 0, "b": 0, "c": 0}
    assert len(archived_files(tmp_path)) == 2  # kept: the saves may be tried one by one
    persister.discard(saves)
    assert archived_files(tmp_path) == set()


def test_a_folder_that_cannot_be_made_is_an_archive_error(tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "c").write_text("in the way")
    with pytest.raises(ArchiveError, match="cannot create folder"):
        archive.write_numbered(tmp_path, "c", 5, ["one", "two"])


def test_numbered_writes_skip_taken_names_and_clean_up_on_error(tmp_path: Path) -> None:
    assert archive.write_numbered(tmp_path, "a", 9, ["x"]) == [("articles/a/9.md", 9)]
    # 9 is taken (another writer's file): the next text goes below it, never over it.
    assert archive.write_numbered(tmp_path, "a", 9, ["y", "z"]) == [
        ("articles/a/8.md", 8),
        ("articles/a/7.md", 7),
    ]
    assert (tmp_path / "articles/a/9.md").read_text() == "x"
    with pytest.raises(ArchiveError, match="no free file name"):
        archive.write_numbered(tmp_path, "a", 0, ["w"] * 2)  # 0 free, then nothing below
    assert not (tmp_path / "articles/a/0.md").exists()  # the first one went again


# --- start-up repair ------------------------------------------------------------------


def test_one_sided_gives_what_only_one_sorted_stream_holds() -> None:
    files = ["a/1", "a/2", "b/1", "c/1"]
    rows = [("a/0", 10), ("a/2", 12), ("b/1", 21), ("d/1", 41)]
    assert list(one_sided(iter(files), iter(rows))) == [
        ("a/0", 10),
        ("a/1", None),
        ("c/1", None),
        ("d/1", 41),
    ]
    assert list(one_sided(iter([]), iter(rows[:1]))) == [("a/0", 10)]
    assert list(one_sided(iter(files[:1]), iter([]))) == [("a/1", None)]


def test_one_sided_stops_on_a_stream_out_of_order() -> None:
    # Merged as if sorted, "b/1" and "a/9" would both look one-sided: repair would move
    # a good file aside and drop a good row. It must stop before either happens.
    with pytest.raises(ArchiveError, match="'a/9' came after 'b/1'"):
        list(one_sided(iter(["a/1", "b/1", "a/9"]), iter([("a/9", 1), ("b/1", 2)])))
    with pytest.raises(ArchiveError, match="not list paths in order"):
        list(one_sided(iter(["a/1"]), iter([("b/1", 2), ("a/1", 1)])))


def test_repair_matches_rows_and_files_across_folders_that_sort_apart(
    store: Store, tmp_path: Path
) -> None:
    """Folder names where walk order and path order differ ("a" then "a-b" on disk,
    "a-b/..." before "a/..." as paths): no good file or row is taken for a stray."""
    root = tmp_path / "archive"
    persister = Persister(store, root, "me:1:x")
    feed = feeds(store)["a"]
    kept = [
        "articles/a/1048575.md",
        "articles/a/b/1.md",
        "articles/a-b/1048575.md",
        "articles/a.b/1048575.md",
        "articles/a0/1048575.md",
        "articles/Z/1048575.md",
        "articles/é/1048575.md",
    ]
    lost, orphan = "articles/a-b/1048574.md", "articles/a0/1048574.md"
    for number, relative in enumerate([*kept, lost]):
        store_entry(
            store,
            feed.id,
            f"guid:{number}",
            content_hash="0" * 64,
            first_seen_at=NOW,
            archive_path=relative,
            file_id=number,
            archive_id=persister.archive_id,
            archived_by="me:1:x",
        )
    for relative in [*kept, orphan]:
        archive.write_atomic(root, relative, "text\n")
    result = Repair(store, root, "me:1:x", lambda: NOW).reconcile()
    assert result.orphans_moved == (orphan,)
    assert result.rows_dropped == (lost,)
    assert sorted(dict(store.archive_paths_in_order())) == sorted(kept)
    assert all((root / relative).exists() for relative in kept)


def test_a_group_that_fails_once_is_retried_with_its_files(store: Store, tmp_path: Path) -> None:
    """A group commit that fails (a lock timeout, say) is retried save by save: every row
    it then stores has its file, and only a save that fails on its own loses its files.
    (Before, the failed group's files were removed and the retry recorded rows without
    them.)"""
    import asyncio

    by_name = feeds(store)
    top = store.next_file_id(by_name["a"].id)
    persister = Persister(store, tmp_path, "me:1:x")
    real, calls = store.add_entry_groups, []

    def flaky(groups: list[object], **options: object) -> list[set[str]]:
        calls.append(len(groups))
        if len(calls) == 1:
            raise StorageError("database is locked (waited 5.0 s)")
        return real(groups, **options)  # type: ignore[arg-type]

    store.add_entry_groups = flaky  # type: ignore[method-assign]
    gone = FeedRecord(**{**by_name["c"].__dict__, "id": 10_000})  # no such feed: fails alone
    saves = [
        Save(by_name["a"], written(tmp_path, "a", top, "1", "2"), NOW),
        Save(by_name["b"], written(tmp_path, "b", top, "3"), NOW),
        Save(gone, written(tmp_path, "c", top, "4"), NOW),
    ]

    async def submit_together() -> list[object]:
        group: GroupCommit[Save, int] = GroupCommit(
            persister.save_many, on_failed=persister.discard
        )
        return await asyncio.gather(*(group.submit(s) for s in saves), return_exceptions=True)

    results = asyncio.run(submit_together())
    assert results[:2] == [2, 1] and isinstance(results[2], StorageError)
    assert calls[0] == 3  # the whole group first, then one by one
    recorded = dict(store.archive_paths_in_order())
    assert (
        set(recorded)
        == archived_files(tmp_path)
        == {
            "articles/a/1048575.md",
            "articles/a/1048574.md",
            "articles/b/1048575.md",
        }
    )


def test_repair_leaves_files_and_rows_a_live_daemon_commits_meanwhile(
    store: Store, tmp_path: Path
) -> None:
    """Start-up repair beside a running daemon: a file whose row is committed while repair
    walks the archive, or whose feed another daemon leased meanwhile, is neither moved
    aside nor has its row dropped. (Before, both happened: rows without files.)"""
    root = tmp_path / "archive"
    persister = Persister(store, root, "me:1:x")
    by_name = feeds(store)
    late_row = written(root, "a", 1048575, "late")[0]  # committed while repair walks
    leased = written(root, "b", 1048575, "busy")[0]  # feed b leased by another daemon meanwhile
    stray = written(root, "c", 1048575, "stray")[0]  # a true orphan
    real_rows, real_leases = store.archive_paths_in_order, store.active_leases
    lease_calls: list[int] = []

    def rows_then_commit(archive_id: str | None = None):  # type: ignore[no-untyped-def]
        yield from real_rows(archive_id)  # what the walk's snapshot holds: no row yet
        persister.save_many([Save(by_name["a"], [late_row], NOW)])

    def leases_later(now: datetime) -> dict[int, str]:
        lease_calls.append(1)
        found = real_leases(now)
        return {**found, by_name["b"].id: "other:1:x"} if len(lease_calls) > 2 else found

    store.archive_paths_in_order = rows_then_commit  # type: ignore[method-assign]
    store.active_leases = leases_later  # type: ignore[method-assign]
    result = Repair(store, root, "me:1:x", lambda: NOW).reconcile()
    assert result.orphans_moved == (stray.relative,)
    assert (root / late_row.relative).exists() and (root / leased.relative).exists()
    assert set(dict(real_rows())) == {late_row.relative}
