"""Start-up repair: rows and files of this archive folder made to agree after a crash.

Temporaries are removed, files without a row are moved aside (under
``orphans/<time>/``), and rows whose file is gone are dropped, so the feed's next poll
archives the entry again. Another live daemon's files in the making are left alone
(see ``Repair.reconcile``). Blocking (files, database): callers on an event loop run
it in a thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from ingestd import archive, capture, decide, naming
from ingestd.errors import ArchiveError
from ingestd.site_index import SiteIndex
from ingestd.store import Store

log = logging.getLogger("ingestd.repair")
T = TypeVar("T", str, tuple[str, int])  # the two streams of start-up repair


@dataclass(frozen=True)
class Reconciled:
    """What start-up reconciliation repaired."""

    temporaries_removed: int = 0
    orphans_moved: tuple[str, ...] = ()
    rows_dropped: tuple[str, ...] = ()
    indexes_rewritten: int = 0  # site indexes that were behind their feed's folder
    raw: capture.Repaired = capture.Repaired()  # WARC files of ended writers, cut back


class Repair:
    """Start-up repair of one archive folder against the store, as ``owner``."""

    def __init__(self, store: Store, root: Path, owner: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.root = root
        self.owner = owner
        self.clock = clock
        self.archive_id = archive.archive_identity(root)

    def reconcile(self, settle_seconds: float = decide.LEASE_SECONDS) -> Reconciled:
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
        index = SiteIndex(self.store, self.root, self.archive_id)
        raw = capture.repair(self.root, _dead_local_owner)
        return Reconciled(len(sweep.removed), tuple(orphans), tuple(dropped), index.repair(), raw)

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
        return {naming.safe_component(names[i]) for i in feed_ids if i in names}

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
