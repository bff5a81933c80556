"""Plain frozen values the store hands out and takes in; never ORM objects.

Callers outside ``ingestd.store`` see only these, so no SQLAlchemy session or lazy
load can leak into the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from ingestd.types import ArchiveFormat, PageFailure

#: The reason ``sync_feeds`` gives to feeds no longer in the configuration.
REMOVED_REASON = "removed from configuration"

R = TypeVar("R")


class FeedConfig(NamedTuple):
    """What the configuration says about one feed; a plain tuple works as well."""

    name: str
    url: str
    format: ArchiveFormat | str
    interval_seconds: int


@dataclass(frozen=True)
class FeedRecord:
    """A stored feed and its polling state."""

    id: int
    name: str
    url: str
    original_url: str
    format: ArchiveFormat
    enabled: bool
    disabled_reason: str | None
    interval_seconds: int
    next_check_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    etag: str | None
    last_modified: str | None
    consecutive_errors: int
    last_error: str | None
    last_status: int | None
    failing_since: datetime | None
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class EntryRecord:
    """A stored entry; ``archive_path`` is None until its file is written."""

    id: int
    feed_id: int
    identity_key: str
    guid: str | None
    link: str | None
    title: str | None
    published_at: datetime | None
    published_is_fallback: bool
    first_seen_at: datetime
    archive_path: str | None
    file_id: int | None
    current_revision: int
    created_at: datetime
    archive_id: str | None = None
    archived_by: str | None = None
    raw_file: str | None = None
    raw_offset: int | None = None


class FetchAttempt(NamedTuple):
    """One row of the fetch log."""

    started_at: datetime
    duration_ms: int
    status: int | None
    outcome: str
    bytes: int
    new_entries: int
    error: str | None = None
    due_at: datetime | None = None  # when the feed was due (its next check at the lease)


@dataclass(frozen=True)
class NewEntry:
    """An entry to insert together with the file already written for it."""

    identity_key: str
    content_hash: str
    guid: str | None
    link: str | None
    title: str | None
    published_at: datetime | None
    published_is_fallback: bool
    archive_path: str
    file_id: int
    #: Revision 1's text, when the archive file is not it (an entry built from its page).
    revision_text: str | None = None
    #: The WARC record it was built from (``ingestd.capture``), when raw capture is on.
    raw_file: str | None = None
    raw_offset: int | None = None


class EntryMatch(NamedTuple):
    """A stored entry that one of a poll's entries matched, by identity key or link.

    ``identity_key`` is the key as the caller gave it (not its stored hash form).
    """

    entry_id: int
    identity_key: str
    link: str
    content_hash: str
    revisions: int


class IndexEntry(NamedTuple):
    """One archived entry as a site index lists it (``Store.index_entries``)."""

    title: str | None
    published_at: datetime | None
    archive_path: str


@dataclass(frozen=True)
class PollLookup:
    """What sorting one poll's entries needs from the store (``Store.poll_lookup``)."""

    matches: list[EntryMatch]
    #: None when the feed has used every file number (down to 1).
    next_file_id: int | None


@dataclass(frozen=True)
class RevisionRecord:
    """One distinct content of an entry; ``text`` is the feed item as format A renders it
    (None for revision 1 of an entry whose archive file holds that text, and for
    revisions recorded before their texts were kept)."""

    entry_id: int
    revision: int
    content_hash: str
    seen_at: datetime
    text: str | None = None


@dataclass(frozen=True)
class FailedEntry:
    """An entry whose article page could not be archived yet.

    It carries what archiving it needs, since the entry may be gone from the feed by
    its next try: ``identity_key`` is the key as stored (a long key's hash).
    """

    identity_key: str
    content_hash: str
    guid: str | None
    link: str | None
    title: str | None
    content: str | None
    published_at: datetime | None
    failure: PageFailure


@dataclass(frozen=True)
class FailureCounts:
    """One feed's entries whose pages failed: waiting for a retry, given up, last error."""

    waiting: int = 0
    given_up: int = 0
    last_error: str | None = None
    next_retry_at: datetime | None = None


@dataclass(frozen=True)
class FetchRecord:
    """One fetch attempt."""

    id: int
    feed_id: int
    started_at: datetime
    duration_ms: int
    status: int | None
    outcome: str
    bytes: int
    new_entries: int
    error: str | None
    due_at: datetime | None = None


@dataclass(frozen=True)
class Pruned:
    """What one ``prune_fetches`` call deleted, the feed id the next call goes on after,
    and whether the pass over every feed is complete."""

    deleted: int
    next_feed: int
    done: bool


@dataclass(frozen=True)
class TableStats:
    """Rows and bytes (with its indexes; None if unknown) of one table."""

    table: str
    rows: int
    bytes: int | None


@dataclass(frozen=True)
class ScheduleLag:
    """Feeds due and waiting for a slot, and the check time of the longest waiting."""

    due: int
    oldest_due_at: datetime | None


@dataclass(frozen=True)
class SyncResult:
    """Names of the feeds ``sync_feeds`` touched, for the log."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    reenabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


def to_record(cls: type[R], row: object, **overrides: Any) -> R:
    """Copy the attributes ``cls`` declares from ``row`` (an ORM object) into a ``cls``."""
    values = {f.name: getattr(row, f.name) for f in fields(cls)}  # type: ignore[arg-type]
    values.update(overrides)
    return cls(**values)
