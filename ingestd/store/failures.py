"""Entries whose article page failed, kept with their retry state until they are archived.

When to retry and when to give up is ``decide.page_failed``'s rule; these queries keep
its result, list it for ``status`` and ``ingestd entries failed``, and reset it for
``ingestd entries retry``. A row goes in the transaction that stores its entry
(``EntryQueries.add_entry_groups``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from ingestd.store.engine import Database
from ingestd.store.records import FailedEntry, FailureCounts
from ingestd.store.schema import Feed, PageFailureRow
from ingestd.types import PageFailure

#: Deletes the failure of an entry just stored (executemany over (feed, key) pairs).
RESOLVE = delete(PageFailureRow).where(
    PageFailureRow.feed_id == bindparam("feed"),
    PageFailureRow.identity_key == bindparam("key"),
)


class FailureQueries:
    """The failed-page half of ``Store``."""

    _db: Database

    def page_failures(self, feed_id: int) -> dict[str, FailedEntry]:
        """Every failed entry of a feed, by identity key as stored."""
        query = select(PageFailureRow).where(PageFailureRow.feed_id == feed_id)
        with self._db.read() as session:
            return {row.identity_key: _failed(row) for row in session.scalars(query)}

    def record_page_failure(self, feed_id: int, entry: FailedEntry) -> None:
        """Store (or update) an entry's failure; ``entry.identity_key`` as stored."""
        query = select(PageFailureRow).where(
            PageFailureRow.feed_id == feed_id, PageFailureRow.identity_key == entry.identity_key
        )
        failure = entry.failure
        values = dict(
            content_hash=entry.content_hash, guid=entry.guid, link=entry.link,
            title=entry.title, content=entry.content, published_at=entry.published_at,
            attempts=failure.attempts, first_failed_at=failure.first_failed_at,
            last_failed_at=failure.last_failed_at, last_error=failure.last_error,
            next_retry_at=failure.next_retry_at, given_up_reason=failure.given_up_reason,
        )  # fmt: skip
        with self._db.write() as session:
            row = session.scalars(query).one_or_none()
            if row is None:
                session.add(
                    PageFailureRow(feed_id=feed_id, identity_key=entry.identity_key, **values)
                )
                return
            for key, value in values.items():
                setattr(row, key, value)

    def failed_entries(self, names: Sequence[str] = ()) -> list[tuple[str, FailedEntry]]:
        """(feed name, failed entry) of the named feeds (or all), oldest failure first."""
        query = select(Feed.name, PageFailureRow).join(Feed, Feed.id == PageFailureRow.feed_id)
        if names:
            query = query.where(Feed.name.in_(list(names)))
        query = query.order_by(Feed.name, PageFailureRow.first_failed_at, PageFailureRow.id)
        with self._db.read() as session:
            return [(name, _failed(row)) for name, row in session.execute(query)]

    def failure_counts(self) -> dict[str, FailureCounts]:
        """Per feed name with failed entries: how many wait for a retry, how many are given
        up, the latest error and the next retry."""
        query = select(
            Feed.name,
            PageFailureRow.given_up_reason,
            PageFailureRow.last_failed_at,
            PageFailureRow.last_error,
            PageFailureRow.next_retry_at,
        ).join(Feed, Feed.id == PageFailureRow.feed_id)
        counts: dict[str, FailureCounts] = {}
        latest: dict[str, datetime] = {}
        with self._db.read() as session:
            for name, given_up, failed_at, error, retry_at in session.execute(query):
                now = counts.get(name, FailureCounts())
                waiting = given_up is None
                counts[name] = FailureCounts(
                    waiting=now.waiting + waiting,
                    given_up=now.given_up + (not waiting),
                    last_error=error
                    if failed_at >= latest.get(name, failed_at)
                    else now.last_error,
                    next_retry_at=_earliest(now.next_retry_at, retry_at),
                )
                latest[name] = max(failed_at, latest.get(name, failed_at))
        return counts

    def retry_failed_entries(self, names: Sequence[str], now: datetime) -> int:
        """Make the failed entries of the named feeds (or all) due at ``now``, given-up ones
        too, with their give-up span counted afresh; their feeds are due at ``now`` as well.
        Returns how many entries."""
        feeds = select(Feed.id)
        if names:
            feeds = feeds.where(Feed.name.in_(list(names)))
        rows = (
            update(PageFailureRow)
            .where(PageFailureRow.feed_id.in_(feeds.scalar_subquery()))
            .values(attempts=0, first_failed_at=now, next_retry_at=now, given_up_reason=None)
            .returning(PageFailureRow.feed_id)
        )
        with self._db.write_rows() as connection:
            touched = list(connection.scalars(rows))
            _due_now(connection, set(touched), now)
        return len(touched)


def _due_now(connection: Connection, feed_ids: set[int], now: datetime) -> None:
    if feed_ids:
        connection.execute(
            update(Feed)
            .where(Feed.id.in_(sorted(feed_ids)), Feed.enabled.is_(True))
            .values(next_check_at=now)
        )


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return min(first, second)


def _failed(row: PageFailureRow) -> FailedEntry:
    failure = PageFailure(
        attempts=row.attempts, first_failed_at=row.first_failed_at,
        last_failed_at=row.last_failed_at, last_error=row.last_error,
        next_retry_at=row.next_retry_at, given_up_reason=row.given_up_reason,
    )  # fmt: skip
    return FailedEntry(
        identity_key=row.identity_key, content_hash=row.content_hash, guid=row.guid,
        link=row.link, title=row.title, content=row.content, published_at=row.published_at,
        failure=failure,
    )  # fmt: skip
