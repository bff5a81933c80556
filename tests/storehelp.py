"""What tests need of a store, through the calls production makes.

The store keeps only methods ingestd calls (tests/store/test_api.py holds it). Tests
write through production's own calls (``add_entry_groups``, ``add_revisions``,
``record_polls``) and read with production's reads or, where production has no
such read, a plain select here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Unpack

from sqlalchemy import select, update

from ingestd.store import EntryRecord, FeedRecord, FetchAttempt, FetchRecord, NewEntry, Store
from ingestd.store.feeds import feed_record
from ingestd.store.leasing import due, due_order
from ingestd.store.records import to_record
from ingestd.store.schema import Entry, Feed, Fetch
from ingestd.types import FeedState

#: When the fetch row that ``set_feed_state`` logs started, unless the state says.
STATE_SET_AT = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def feed_named(store: Store, name: str) -> FeedRecord | None:
    """The feed called ``name``, or None."""
    return next((feed for feed in store.list_feeds() if feed.name == name), None)


def set_feed_state(store: Store, feed_id: int, **fields: Unpack[FeedState]) -> FeedRecord:
    """Set a feed's polling state as a poll does (``record_polls``), which logs one
    "ok" fetch beside it; returns the feed as stored."""
    started = fields.get("last_fetch_at") or STATE_SET_AT
    attempt = FetchAttempt(started, 0, None, "ok", 0, 0)
    store.record_polls([(feed_id, attempt, fields)])
    record = store.get_feed_by_id(feed_id)
    assert record is not None
    return record


def due_feeds(store: Store, now: datetime, limit: int = 100) -> list[FeedRecord]:
    """The feeds ``lease_due_feeds`` would lease at ``now``, in its order, leasing none."""
    query = select(Feed).where(due(now)).order_by(*due_order())
    with store._db.read() as session:
        return [feed_record(row) for row in session.scalars(query.limit(limit))]


def fetch_log(store: Store, feed_id: int, limit: int = 10) -> list[FetchRecord]:
    """The latest fetch attempts of a feed, newest first."""
    query = (
        select(Fetch)
        .where(Fetch.feed_id == feed_id)
        .order_by(Fetch.started_at.desc(), Fetch.id.desc())
        .limit(limit)
    )
    with store._db.read() as session:
        return [to_record(FetchRecord, row) for row in session.scalars(query)]


def entry_with_key(store: Store, feed_id: int, identity_key: str) -> EntryRecord | None:
    """The entry of ``feed_id`` with this identity key, or None (as a poll finds it)."""
    matches = store.poll_lookup(feed_id, [identity_key], []).matches
    return store.get_entry(matches[0].entry_id) if matches else None


def store_entry(
    store: Store,
    feed_id: int,
    identity_key: str,
    *,
    content_hash: str,
    first_seen_at: datetime,
    guid: str | None = None,
    link: str | None = None,
    title: str | None = None,
    published_at: datetime | None = None,
    published_is_fallback: bool = False,
    archive_path: str | None = None,
    file_id: int | None = None,
    archive_id: str | None = None,
    archived_by: str | None = None,
) -> EntryRecord:
    """Store one entry as a commit does (``add_entry_groups``); an identity already
    stored is left as it is. Returns the entry as stored.

    Without ``archive_path`` the row has no file: ingestd no longer writes such rows,
    but databases from before files were recorded with their entry hold them.
    """
    entry = NewEntry(
        identity_key=identity_key, content_hash=content_hash, guid=guid, link=link,
        title=title, published_at=published_at,
        published_is_fallback=published_is_fallback,
        archive_path=archive_path,  # type: ignore[arg-type]  # None: a row without its file
        file_id=file_id,  # type: ignore[arg-type]
    )  # fmt: skip
    store.add_entry_groups(
        [(feed_id, [entry], first_seen_at)], archive_id=archive_id, archived_by=archived_by
    )
    found = entry_with_key(store, feed_id, identity_key)
    assert found is not None
    return found


def revise(
    store: Store, entry_id: int, content_hash: str, seen_at: datetime, text: str | None = None
) -> int | None:
    """Record new content of an entry as a poll does (``add_revisions``); its revision
    number, or None when unchanged from the latest."""
    if not store.add_revisions([(entry_id, content_hash, text)], seen_at):
        return None
    entry = store.get_entry(entry_id)
    assert entry is not None
    return entry.current_revision


def record_file_late(store: Store, entry_id: int, archive_path: str, file_id: int) -> None:
    """Give a row without a file its file, after entries stored later got theirs.

    ingestd writes a row and its file together; this is the state an older database
    (or a commit landing after later ids on PostgreSQL) leaves, made by hand.
    """
    query = (
        update(Entry).where(Entry.id == entry_id).values(archive_path=archive_path, file_id=file_id)
    )
    with store._db.write() as session:
        session.execute(query)
