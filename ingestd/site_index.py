"""The site index of a format-A feed: ``lists/{feed}.md``, its newest files, newest first.

The source archive kept one per site (``../shared/FORMATS.md``): the site's name, a
``------`` line, a blank line, then up to 300 lines
``{M}-{D} [{title}](/articles/{folder}/{file})``, each followed by a blank line, newest
first, the month and day taken in UTC+8. ingestd rewrites a feed's index, whole, after
each commit that archived entries of it (``commit.Persister``): a temporary renamed over
the old one, so a reader never sees half an index. It is not synced: it is made from
the database, and start-up repair (``Repair``) rewrites every index older than its
feed's folder, which is what a crash between a commit and its index leaves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from ingestd import archive, naming
from ingestd.store import FeedRecord, Store
from ingestd.types import ArchiveFormat

INDEX_LIMIT = 300  # lines of one index
TITLE_LIMIT = 300  # characters of a title in the index (the file keeps the whole title)
INDEX_ZONE = timezone(timedelta(hours=8))  # the source archive dated its lists in UTC+8
_UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IndexLine:
    """One line of a site index list."""

    published: datetime
    title: str
    relative: str  # e.g. articles/voa/1048575.md


def render_index(site: str, lines: Iterable[IndexLine]) -> str:
    """The site list: name, rule, blank line, then up to 300 newest-first entries.

    A title is written on one line (its runs of white space become one space) and at
    most ``TITLE_LIMIT`` characters long, so an index stays one line per entry and
    bounded in size whatever a feed's titles hold.
    """
    newest = sorted(lines, key=lambda line: line.published, reverse=True)[:INDEX_LIMIT]
    parts = [f"{site}\n------\n\n"]
    for line in newest:
        local = line.published.astimezone(INDEX_ZONE)
        title = " ".join(line.title.split())[:TITLE_LIMIT]
        parts.append(f"{local.month}-{local.day} [{title}](/{line.relative})\n\n")
    return "".join(parts)


def index_path(feed_name: str) -> str:
    """The index of a feed, relative to the archive folder."""
    return f"lists/{naming.safe_component(feed_name)}.md"


class SiteIndex:
    """The site indexes of one archive folder, made from the store's rows."""

    def __init__(self, store: Store, root: Path, archive_id: str) -> None:
        self.store = store
        self.root = root
        self.archive_id = archive_id

    def rewrite(self, feeds: Iterable[FeedRecord]) -> int:
        """Rewrite the indexes of these feeds (those of format A with archived entries);
        returns how many were written. Blocking: one read, one file per feed."""
        chosen = {feed.id: feed for feed in feeds if feed.format is ArchiveFormat.FEED}
        if not chosen:
            return 0
        found = self.store.index_entries(chosen, self.archive_id, INDEX_LIMIT)
        for feed_id, entries in found.items():
            name = chosen[feed_id].name
            lines = [
                IndexLine(e.published_at or _UNDATED, e.title or "", e.archive_path)
                for e in entries
            ]
            text = render_index(name, lines)
            archive.write_atomic(self.root, index_path(name), text, durable=False)
        return len(found)

    def behind(self) -> set[str]:
        """The feed folders whose index is missing or older than the folder (a file was
        added, renamed or moved aside after the index was written). Cheap: two folder
        listings, no query."""
        indexes = {
            entry.name.removesuffix(".md"): entry.stat().st_mtime_ns
            for entry in _listing(self.root / "lists")
            if entry.name.endswith(".md")
        }
        return {
            entry.name
            for entry in _listing(self.root / "articles")
            if entry.is_dir(follow_symlinks=False)
            and indexes.get(entry.name, -1) < entry.stat().st_mtime_ns
        }

    def repair(self) -> int:
        """Rewrite the indexes that are behind (start-up repair); returns how many."""
        stale = self.behind()
        if not stale:
            return 0
        feeds = [f for f in self.store.list_feeds() if naming.safe_component(f.name) in stale]
        return self.rewrite(feeds)


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as scan:
            return list(scan)
    except FileNotFoundError:
        return []
