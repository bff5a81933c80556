"""Rebuild archived entries from their raw records with today's extraction and rules.

An entry built from its article page is rendered again from the page its WARC record
holds; an entry archived from its feed item (raw capture ``"all"``) from the item in
the recorded feed document. Where the file would change, the text it had is kept as a
revision first (``Store.keep_replaced_text``), then the file is replaced atomically
and the search index updated. Each step is idempotent, so a run killed anywhere is
finished by the next one, and a second run changes nothing.

Feeds are leased while their entries are rebuilt, as a poll leases them, so a daemon
never revises an entry at the same moment; a feed a daemon is polling is waited for.

Blocking (files, database).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ingestd import archive, capture, indexer, render
from ingestd.errors import ArchiveError, ExtractError, ParseError
from ingestd.pool import steps
from ingestd.store import EntryRecord, FeedRecord, Store, stored_key
from ingestd.types import ArchiveFormat, EntryData, FeedSpec

#: Entries rebuilt per lease renewal.
CHUNK = 100


@dataclass
class Summary:
    """What a reprocess run found (or, with ``dry_run``, would do)."""

    unchanged: int = 0
    changed: int = 0
    no_raw: int = 0  # entries without a raw record (capture was off, or before it)
    failed: list[str] = field(default_factory=list)  # one line per entry that failed
    busy: list[str] = field(default_factory=list)  # feeds a daemon held the whole wait
    paths: list[str] = field(default_factory=list)  # the files changed (or that would be)

    @property
    def seen(self) -> int:
        """Entries looked at."""
        return self.unchanged + self.changed + self.no_raw + len(self.failed)


@dataclass(frozen=True)
class Job:
    """One feed to reprocess: its stored record and today's configuration of it."""

    record: FeedRecord
    spec: FeedSpec


class Reprocessor:
    """Rebuilds the entries of feeds in one archive folder."""

    def __init__(
        self,
        store: Store,
        root: Path,
        owner: str,
        clock: Callable[[], datetime],
        *,
        lease_seconds: float = 300.0,
        busy_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.root = root
        self.owner = owner
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.busy_wait = busy_wait
        self.sleep = sleep

    def run(
        self,
        jobs: Sequence[Job],
        *,
        since: datetime | None = None,
        dry_run: bool = False,
        progress: Callable[[Summary], object] | None = None,
    ) -> Summary:
        """Rebuild every archived entry of these feeds (first seen since ``since``)."""
        summary = Summary()
        archive_id = archive.archive_identity(self.root)
        for job in jobs:
            after = 0
            while True:
                if not dry_run and not self._lease(job):
                    summary.busy.append(job.spec.name)
                    break
                try:
                    entries = self.store.raw_entries(
                        archive_id, [job.record.id], since=since, after_id=after, limit=CHUNK
                    )
                    for entry in entries:
                        self._one(job.spec, job.record, entry, summary, dry_run)
                        if progress is not None:
                            progress(summary)
                finally:
                    if not dry_run:
                        self.store.release_leases_of([self.owner])
                if len(entries) < CHUNK:
                    break
                after = entries[-1].id
        return summary

    def _lease(self, job: Job) -> bool:
        """Lease the feed, waiting up to ``busy_wait`` for a daemon's poll to end."""
        if not job.record.enabled:
            return True  # no daemon polls a disabled feed
        waited = 0.0
        while True:
            leased = self.store.lease_feeds(
                self.owner, [job.record.id], self.clock(), self.lease_seconds
            )
            if leased:
                return True
            if waited >= self.busy_wait:
                return False
            self.sleep(0.5)
            waited += 0.5

    def _one(
        self, spec: FeedSpec, feed: FeedRecord, entry: EntryRecord, summary: Summary, dry: bool
    ) -> None:
        assert entry.archive_path is not None
        if entry.raw_file is None or entry.raw_offset is None:
            summary.no_raw += 1
            return
        where = f"entry {entry.id} ({entry.archive_path})"
        try:
            recorded = capture.read(self.root, capture.RawRef(entry.raw_file, entry.raw_offset))
            text = rebuild(spec, feed.url, Source.of(entry), recorded)
            current = (self.root / entry.archive_path).read_bytes()
        except (ArchiveError, ExtractError, ParseError) as exc:
            summary.failed.append(f"{where}: {exc}")
            return
        except OSError as exc:
            summary.failed.append(f"{where}: cannot read the file: {exc.strerror or exc}")
            return
        if text.encode("utf-8") == current:
            summary.unchanged += 1
            return
        summary.changed += 1
        summary.paths.append(entry.archive_path)
        if dry:
            return
        previous = current.decode("utf-8", "replace")
        self.store.keep_replaced_text(entry.id, previous, self.clock())
        archive.write_atomic(self.root, entry.archive_path, text)
        indexer.index_file(self.store, entry.id, entry.title, text)


@dataclass(frozen=True)
class Source:
    """What rebuilding an entry needs besides its raw record (what its row keeps)."""

    identity_key: str  # as stored
    title: str
    link: str
    guid: str | None
    published: datetime  # the item's date, or when it was first seen

    @classmethod
    def of(cls, entry: EntryRecord) -> Source:
        """The source of a stored entry."""
        published = entry.published_at or entry.first_seen_at
        return cls(entry.identity_key, entry.title or "", entry.link or "", entry.guid, published)


def rebuild(spec: FeedSpec, feed_url: str, source: Source, recorded: capture.Captured) -> str:
    """The file text today's pipeline makes of an entry's raw record.

    Raises ExtractError when the page holds no article, ParseError when a feed
    document does not parse or no longer holds the entry.
    """
    item = EntryData(source.title, source.link, source.guid, "", source.published)
    if spec.fetch_page or spec.format is ArchiveFormat.REPOST:
        content_type = recorded.headers.get("content-type", "")
        return render.render_page(
            spec, item, source.published, recorded.payload, content_type, recorded.url
        )
    read = steps.read_feed(recorded.payload, recorded.headers, feed_url)
    for keyed in read.keyed:
        if stored_key(keyed.key) == source.identity_key:
            return render.render_items(spec, [keyed.entry], source.published)[0]
    raise ParseError("the recorded feed document no longer holds this entry")
