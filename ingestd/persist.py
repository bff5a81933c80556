"""Archive files and their rows, written together; start-up repair when they disagree.

Write order: every file of a batch is written (atomically, under a name no other
writer holds; the pipeline's pool workers do this with ``archive.write_numbered``, or,
on a feed's first poll, write every file as a temporary that a later pool step names
one batch at a time with ``archive.name_written``), the filesystem is synced once,
then all rows are inserted in one transaction that records the files. A crash before
the commit leaves at most one batch of files without rows (and temporaries);
``Persister.reconcile`` removes the temporaries and moves those files aside at the
next start, and the feed still offers the entries, so they are archived again:
exactly once in the end.

Blocking (files, database): callers on an event loop run these in a thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from ingestd import archive, capture
from ingestd.errors import ArchiveError
from ingestd.faults import crash_point
from ingestd.store import FeedRecord, NewEntry, Store

log = logging.getLogger("ingestd.persist")
T = TypeVar("T", str, tuple[str, int])  # the two streams of start-up repair


@dataclass(frozen=True)
class Pending:
    """A written file waiting for its row, with what the row records."""

    identity_key: str
    content_hash: str
    relative: str  # its file, already written (not yet synced) under the archive folder
    file_id: int
    guid: str | None
    link: str | None
    title: str | None
    published: datetime
    published_is_fallback: bool
    resolves: bool = False  # it settles a page failure the store keeps
    revision_text: str | None = None  # revision 1's text when the file is not it (pages)
    raw: capture.RawRef | None = None  # the WARC record it was built from (raw capture)


@dataclass(frozen=True)
class Save:
    """One feed's batch to archive: the feed, its written files, when they were seen."""

    feed: FeedRecord
    batch: Sequence[Pending]
    seen_at: datetime


@dataclass(frozen=True)
class Reconciled:
    """What start-up reconciliation repaired."""

    temporaries_removed: int = 0
    orphans_moved: tuple[str, ...] = ()
    rows_dropped: tuple[str, ...] = ()
    raw: capture.Repaired = capture.Repaired()  # WARC files of ended writers, cut back


def make_owner() -> str:
    """A name for this process in leases and archive rows: host, pid, random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Persister:
    """Writes batches of archive files with their rows for one archive folder."""

    def __init__(
        self,
        store: Store,
        root: Path,
        owner: str,
        clock: Callable[[], datetime],
        raw: capture.RawWriter | None = None,
    ) -> None:
        self.store = store
        self.raw = raw  # its records, like the files, are synced before rows name them
        self.root = root
        self.owner = owner
        self.clock = clock
        self._archive_id: str | None = None

    @property
    def archive_id(self) -> str:
        """The id of this archive folder (made on first use)."""
        if self._archive_id is None:
            self._archive_id = archive.archive_identity(self.root)
        return self._archive_id

    def save_many(self, saves: Sequence[Save]) -> list[int]:
        """Record several feeds' written batches together: one sync, one transaction.

        All or nothing: on any error no row is stored and the files stay, so the caller
        can try the saves again one by one (``GroupCommit`` does) and ``discard`` those
        that fail on their own. Returns, per save, how many entries were archived; an
        entry another writer stored first loses its file again.
        """
        counts = [0] * len(saves)
        todo = [(index, save) for index, save in enumerate(saves) if save.batch]
        if not todo:
            return counts
        written = [
            [(_new_entry(item), self.root / item.relative) for item in save.batch]
            for _index, save in todo
        ]
        # Durable before any row names them: one sync for the whole group.
        archive.sync_batches(_by_folder(path for files in written for _e, path in files))
        if self.raw is not None:
            self.raw.sync()
        crash_point("batch-synced")
        inserted = self.store.add_entry_groups(
            [(save.feed.id, [entry for entry, _path in files], save.seen_at)
             for (_index, save), files in zip(todo, written, strict=True)],
            archive_id=self.archive_id, archived_by=self.owner,
            resolved=[(save.feed.id, item.identity_key)
                      for _index, save in todo for item in save.batch if item.resolves],
        )  # fmt: skip
        crash_point("batch-committed")
        for (index, _save), files, keys in zip(todo, written, inserted, strict=True):
            for entry, path in files:
                if entry.identity_key not in keys:
                    path.unlink(missing_ok=True)
            counts[index] = len(keys)
        return counts

    def discard(self, saves: Sequence[Save]) -> None:
        """Remove the files of saves that could not be recorded: no row will name them."""
        archive.discard(self.root, [item.relative for save in saves for item in save.batch])

    # --- start-up repair -------------------------------------------------------------

    def reconcile(self, settle_seconds: float = 300.0) -> Reconciled:
        """Make rows and files agree after a crash: sweep temporaries, move orphans aside.

        Only this archive folder's rows are judged (daemons on other machines keep
        their own folders). A file without a row in a feed another live daemon is
        polling right now is left alone while younger than ``settle_seconds`` (the
        lease time): its row may be a moment from being committed.
        """
        self._release_dead_local_leases()
        leases = self.store.active_leases(self.clock())
        theirs = {feed_id for feed_id, owner in leases.items() if owner != self.owner}
        busy = self._folders_of(theirs)
        settled = time.time() - settle_seconds
        # With another daemon at work, a young temporary file may be one of its files
        # in the making (on a shared volume); alone, every one is a crash's leftover.
        sweep = archive.ArchiveSweep(self.root, settled if theirs else None)
        strays, lost = [], []
        with closing(self.store.archive_paths_in_order(self.archive_id)) as rows:
            for relative, entry_id in one_sided(iter(sweep), rows):
                if entry_id is not None:
                    lost.append((relative, entry_id))
                elif _feed_folder(relative) not in busy or _mtime(self.root / relative) < settled:
                    strays.append(relative)
        orphans = self._still_orphans(strays, settled)
        self._move_aside(orphans)
        dropped = []
        for relative, entry_id in lost:
            if (self.root / relative).exists():
                continue  # written and committed by another daemon while we walked
            self.store.delete_entry(entry_id)
            dropped.append(relative)
            log.warning(
                "database row without its file dropped (%s); it will be refetched", relative
            )
        for entry in self.store.entries_without_file():
            self.store.delete_entry(entry.id)
            dropped.append(f"entry {entry.id}")
        raw = capture.repair(self.root, _dead_local_owner)
        return Reconciled(len(sweep.removed), tuple(orphans), tuple(dropped), raw)

    def _still_orphans(self, strays: list[str], settled: float) -> list[str]:
        """The files without a row that still have none now that the walk is over.

        The walk and the rows it was merged with are a snapshot; a live daemon may have
        leased a feed, written a file and committed its row since. Leases are read
        before rows: a daemon commits its row before it gives its lease back, so a file
        whose feed is no longer leased by another has its row by then, if it ever will.
        """
        if not strays:
            return []
        leases = self.store.active_leases(self.clock())
        busy = self._folders_of({i for i, owner in leases.items() if owner != self.owner})
        young = [r for r in strays if _feed_folder(r) in busy and _mtime(self.root / r) >= settled]
        candidates = [r for r in strays if r not in set(young)]
        recorded = self.store.recorded_paths(candidates)
        return [r for r in candidates if r not in recorded]

    def _move_aside(self, orphans: Sequence[str]) -> None:
        stamp = self.clock().strftime("%Y%m%dT%H%M%S%fZ")
        for relative in orphans:
            target = self.root / "orphans" / stamp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.root / relative), target)
            log.warning("archive file without a database row moved to %s", target)

    def _folders_of(self, feed_ids: set[int]) -> set[str]:
        """The archive folders of these feeds (others' leases: usually none)."""
        if not feed_ids:
            return set()
        names = {feed.id: feed.name for feed in self.store.list_feeds()}
        return {archive.safe_component(names[i]) for i in feed_ids if i in names}

    def _release_dead_local_leases(self) -> None:
        # A daemon killed on this host keeps its leases until they run out; its
        # process is provably gone, so they can be freed at once.
        dead = [
            owner
            for owner in set(self.store.active_leases(self.clock()).values())
            if owner != self.owner and _dead_local_owner(owner)
        ]
        if dead and self.store.release_leases_of(dead):
            log.warning("freed the leases of ended processes: %s", ", ".join(sorted(dead)))


def one_sided(
    files: Iterator[str], rows: Iterator[tuple[str, int]]
) -> Iterator[tuple[str, int | None]]:
    """What only one of two streams sorted by path holds, in path order.

    ``(path, None)`` for a file without a row, ``(path, entry id)`` for a row without
    its file. Raises ArchiveError, before anything is acted on, if either stream is
    out of order: a merge of unsorted streams would call matching files and rows
    strangers.
    """
    file, row = _next_in_order(files, None), _next_in_order(rows, None)
    while file is not None or row is not None:
        if file is not None and (row is None or file < row[0]):
            yield file, None
            file = _next_in_order(files, file)
        elif row is not None and (file is None or row[0] < file):
            yield row
            row = _next_in_order(rows, row)
        else:  # the same path on both sides
            file, row = _next_in_order(files, file), _next_in_order(rows, row)


def _next_in_order(stream: Iterator[T], last: T | None) -> T | None:
    following = next(stream, None)
    if following is not None and last is not None and not last < following:
        raise ArchiveError(
            f"start-up repair stopped: {following!r} came after {last!r}; "
            "the archive or the database does not list paths in order"
        )
    return following


def _new_entry(item: Pending) -> NewEntry:
    return NewEntry(
        identity_key=item.identity_key, content_hash=item.content_hash, guid=item.guid,
        link=item.link, title=item.title, published_at=item.published,
        published_is_fallback=item.published_is_fallback, archive_path=item.relative,
        file_id=item.file_id, revision_text=item.revision_text,
        raw_file=item.raw.file if item.raw else None,
        raw_offset=item.raw.offset if item.raw else None,
    )  # fmt: skip


def _by_folder(paths: Iterable[Path]) -> dict[Path, list[Path]]:
    folders: dict[Path, list[Path]] = {}
    for path in paths:
        folders.setdefault(path.parent, []).append(path)
    return folders


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _feed_folder(relative: str) -> str:
    parts = relative.split("/")
    return parts[1] if len(parts) > 2 else ""


def _dead_local_owner(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, just someone else's
    return False
