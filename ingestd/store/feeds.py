"""Feed queries: configuration sync, polling state, fetch log and due-feed leasing.

Each method is one short transaction; times are passed in, the store reads no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.dml import Update

from ingestd.errors import StorageError
from ingestd.store.engine import Database
from ingestd.store.leasing import due, lease_update, record_due_order
from ingestd.store.records import (
    REMOVED_REASON,
    FeedConfig,
    FeedRecord,
    FetchAttempt,
    SyncResult,
    to_record,
)
from ingestd.store.schema import FETCH_OUTCOMES, Feed, Fetch
from ingestd.types import ArchiveFormat, FeedState

#: PostgreSQL advisory lock key serializing configuration syncs ("ingestd" + 1).
_SYNC_LOCK = 0x696E6765737464 + 1

FeedSpecs = Iterable[FeedConfig | tuple[str, str, ArchiveFormat | str, int]]
#: (next check, last fetch, new interval in seconds) -> the next check under the new
#: interval (``decide.after_interval_change``; the store holds no scheduling rule).
Reschedule = Callable[[datetime | None, datetime | None, int], datetime | None]

# record_polls runs once per group of polls: its statements are built once.
_FEEDS_WITH_IDS = (
    select(Feed.id, Feed.lease_owner)
    .where(Feed.id.in_(bindparam("ids", expanding=True)))
    .order_by(Feed.id)
    .with_for_update()
)
_LEASE_GIVEN_BACK = {"_lease_owner": None, "_lease_expires_at": None}
_INSERT_FETCH = insert(Fetch)
_FEED_UPDATES: dict[tuple[str, ...], Update] = {}


def _feed_update(fields: tuple[str, ...]) -> Update:
    """UPDATE feeds SET (these fields) WHERE id = :_id, for executemany; cached per field set."""
    statement = _FEED_UPDATES.get(fields)
    if statement is None:
        statement = (
            update(Feed)
            .where(Feed.id == bindparam("_id"))
            .values({field: bindparam(f"_{field}") for field in fields})
        )
        _FEED_UPDATES[fields] = statement
    return statement


def _state_rows(
    polls: Sequence[tuple[int, FetchAttempt, FeedState]], given_back: set[int]
) -> dict[tuple[str, ...], list[dict[str, object]]]:
    """``_feed_update`` parameters per set of fields: each poll's state, and a lease
    given back (``given_back``) as two more fields of the same UPDATE."""
    by_fields: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for feed_id, _, state in polls:
        row = {"_id": feed_id, **{f"_{key}": value for key, value in state.items()}}
        if feed_id in given_back:
            row.update(_LEASE_GIVEN_BACK)
        by_fields.setdefault(tuple(sorted(k[1:] for k in row if k != "_id")), []).append(row)
    return by_fields


class FeedQueries:
    """The feed half of ``Store``."""

    _db: Database

    def sync_feeds(
        self, specs: FeedSpecs, now: datetime, reschedule: Reschedule | None = None
    ) -> SyncResult:
        """Make the feeds table match the configuration; removed feeds are disabled, not
        deleted. A feed whose interval changed gets ``reschedule``'s next check."""
        wanted = {spec[0]: FeedConfig(*spec) for spec in specs}
        added, updated, reenabled, disabled = [], [], [], []
        with self._db.write() as session:
            if self._db.dialect == "postgresql":
                # Daemons starting together would both insert a new feed: one waits.
                session.execute(text(f"SELECT pg_advisory_xact_lock({_SYNC_LOCK})"))
            existing = {feed.name: feed for feed in session.scalars(select(Feed))}
            for name, spec in wanted.items():
                feed = existing.get(name)
                if feed is None:
                    session.add(_new_feed(spec, now))
                    added.append(name)
                    continue
                if _apply_config(feed, spec, now, reschedule):
                    updated.append(name)
                if not feed.enabled and feed.disabled_reason == REMOVED_REASON:
                    _enable(feed, now)
                    reenabled.append(name)
            for name, feed in existing.items():
                if name not in wanted and (feed.enabled or feed.disabled_reason != REMOVED_REASON):
                    _disable(feed, REMOVED_REASON)
                    disabled.append(name)
        return SyncResult(tuple(added), tuple(updated), tuple(reenabled), tuple(disabled))

    def get_feed_by_id(self, feed_id: int) -> FeedRecord | None:
        """The feed with this id, or None."""
        with self._db.read() as session:
            feed = session.get(Feed, feed_id)
            return None if feed is None else feed_record(feed)

    def list_feeds(self) -> list[FeedRecord]:
        """Every feed, enabled or not, by name."""
        with self._db.read() as session:
            return [feed_record(f) for f in session.scalars(select(Feed).order_by(Feed.name))]

    def lease_due_feeds(
        self,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int = 100,
        exclude: Sequence[int] = (),
    ) -> list[FeedRecord]:
        """Take a lease on up to ``limit`` due feeds, none of ``exclude``; no two owners
        ever hold the same feed.

        A lease runs out after ``lease_seconds``, so a crashed owner's feeds come back.
        """
        until = now + timedelta(seconds=lease_seconds)
        wanted = due(now)
        if exclude:
            wanted = and_(wanted, Feed.id.not_in(list(exclude)))
        locking = self._db.dialect == "postgresql"
        with self._db.write_rows(bookkeeping=True) as connection:
            rows = lease_update(connection, owner, wanted, until, limit, skip_locked=locking)
            records = [feed_record(row) for row in rows]
        return sorted(records, key=record_due_order)

    def next_due_at(self, now: datetime) -> datetime | None:
        """When the next enabled feed falls due (``now`` if one is due, unleased); None
        when no feed is waiting for a time (every one leased, or none enabled)."""
        free = or_(Feed.lease_expires_at.is_(None), Feed.lease_expires_at <= now)
        query = select(
            func.count(), func.count(Feed.next_check_at), func.min(Feed.next_check_at)
        ).where(Feed.enabled.is_(True), free)
        with self._db.read() as session:
            count, checked, soonest = session.execute(query).one()
        if count > checked or (soonest is not None and soonest <= now):
            return now  # a never-polled feed, or one already due
        return soonest

    def lease_feeds(
        self, owner: str, feed_ids: Sequence[int], now: datetime, lease_seconds: float
    ) -> set[int]:
        """Lease these feeds whether due or not (a one-off fetch); skip ones leased by
        others and disabled ones. Returns the ids leased (the caller has the records)."""
        until = now + timedelta(seconds=lease_seconds)
        free = or_(
            Feed.lease_expires_at.is_(None), Feed.lease_expires_at <= now, Feed.lease_owner == owner
        )
        query = (
            update(Feed)
            .where(Feed.id.in_(list(feed_ids)), Feed.enabled.is_(True), free)
            .values(lease_owner=owner, lease_expires_at=until)
            .returning(Feed.id)
        )
        with self._db.write_rows() as connection:
            return set(connection.scalars(query))

    def active_leases(self, now: datetime) -> dict[int, str]:
        """Feed id -> owner of every lease that has not run out."""
        query = select(Feed.id, Feed.lease_owner).where(
            Feed.lease_owner.is_not(None), Feed.lease_expires_at > now
        )
        with self._db.read() as session:
            return {feed_id: owner for feed_id, owner in session.execute(query) if owner}

    def release_leases_of(self, owners: Sequence[str]) -> int:
        """Free every lease held by these owners (processes known to be dead)."""
        if not owners:
            return 0
        query = (
            update(Feed)
            .where(Feed.lease_owner.in_(list(owners)))
            .values(lease_owner=None, lease_expires_at=None)
        )
        with self._db.write() as session:
            return len(session.execute(query.returning(Feed.id)).all())

    def release_lease(self, feed_id: int, owner: str) -> bool:
        """Give a feed's lease back; False if ``owner`` no longer held it."""
        query = (
            update(Feed)
            .where(Feed.id == feed_id, Feed.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .returning(Feed.id)
        )
        with self._db.write() as session:
            return session.execute(query).first() is not None

    def renew_leases(
        self, feed_ids: Sequence[int], owner: str, now: datetime, lease_seconds: float
    ) -> set[int]:
        """Extend ``owner``'s leases on these feeds to ``now + lease_seconds``, in one
        statement; returns the ids still held.

        A lease that already ran out and was taken by someone else is not taken back.
        """
        if not feed_ids:
            return set()
        until = now + timedelta(seconds=lease_seconds)
        query = (
            update(Feed)
            .where(Feed.id.in_(list(feed_ids)), Feed.lease_owner == owner)
            .values(lease_expires_at=until)
            .returning(Feed.id)
        )
        with self._db.write_rows(bookkeeping=True) as connection:
            return set(connection.scalars(query))

    def record_polls(
        self, polls: Sequence[tuple[int, FetchAttempt, FeedState]], give_back: str | None = None
    ) -> set[int]:
        """Log each poll's fetch attempt and set its feed's new state, every poll in
        one transaction (a group commit).

        With ``give_back``, the leases that owner holds on these feeds are given back in
        the same transaction (their polls are over): no transaction of its own per poll.
        Returns the ids of the feeds whose lease was given back.
        """
        for _feed_id, attempt, state in polls:
            if attempt.outcome not in FETCH_OUTCOMES:
                raise ValueError(
                    f"outcome must be one of {FETCH_OUTCOMES}, not {attempt.outcome!r}"
                )
            unknown = set(state) - set(FeedState.__optional_keys__)
            if unknown:
                raise TypeError(f"record_polls got unknown state fields: {sorted(unknown)}")
        # Core executemany statements, not the ORM: on a warm cycle (all 304) this is
        # most of what a poll costs. Polls that set the same fields share one UPDATE.
        ids = sorted({feed_id for feed_id, _, _ in polls})
        with self._db.write_rows(bookkeeping=True) as connection:
            # Locked (on PostgreSQL) until the commit: a lease seen here as ours stays ours.
            owners = {i: o for i, o in connection.execute(_FEEDS_WITH_IDS, {"ids": ids})}
            if missing := set(ids) - owners.keys():
                raise StorageError(f"no feed with id {min(missing)}: {self._db.target}")
            given = {i for i, owner in owners.items() if give_back and owner == give_back}
            connection.execute(
                _INSERT_FETCH,
                [dict(feed_id=feed_id, **attempt._asdict()) for feed_id, attempt, _ in polls],
            )
            for fields, rows in _state_rows(polls, given).items():
                if fields:
                    connection.execute(_feed_update(fields), rows)
        return given

    def enable_feed(self, name: str, now: datetime | None = None) -> bool:
        """Re-enable a feed (due at ``now`` if given); False if there is no such feed."""
        with self._db.write() as session:
            feed = session.scalars(select(Feed).where(Feed.name == name)).one_or_none()
            if feed is not None:
                _enable(feed, now)
            return feed is not None

    def disable_feed(self, name: str, reason: str) -> bool:
        """Stop polling a feed and say why; False if there is no such feed."""
        with self._db.write() as session:
            feed = session.scalars(select(Feed).where(Feed.name == name)).one_or_none()
            if feed is not None:
                _disable(feed, reason)
            return feed is not None


def feed_record(feed: Feed | Row[Any]) -> FeedRecord:
    """Copy an ORM row (or a Core row of the feeds table) into a FeedRecord."""
    return to_record(FeedRecord, feed, format=ArchiveFormat(feed.format))


def _new_feed(spec: FeedConfig, now: datetime) -> Feed:
    # A new feed is due at once.
    return Feed(
        name=spec.name, url=spec.url, original_url=spec.url,
        format=ArchiveFormat(spec.format).value, enabled=True,
        interval_seconds=spec.interval_seconds, next_check_at=now, consecutive_errors=0,
        created_at=now,
    )  # fmt: skip


def _apply_config(
    feed: Feed, spec: FeedConfig, now: datetime, reschedule: Reschedule | None = None
) -> bool:
    """Copy changed configuration onto ``feed``; True if anything changed."""
    changed = False
    # Compare with the configured URL: a stored redirect target is not a config change.
    if feed.original_url != spec.url:
        feed.url = feed.original_url = spec.url
        # Validators belong to the old URL; poll the new one right away.
        feed.etag = feed.last_modified = None
        feed.next_check_at = now
        changed = True
    fmt = ArchiveFormat(spec.format).value
    if feed.format != fmt:
        feed.format = fmt
        changed = True
    if feed.interval_seconds != spec.interval_seconds:
        feed.interval_seconds = spec.interval_seconds
        if reschedule is not None:
            feed.next_check_at = reschedule(
                feed.next_check_at, feed.last_fetch_at, spec.interval_seconds
            )
        changed = True
    return changed


def _enable(feed: Feed, now: datetime | None) -> None:
    feed.enabled = True
    feed.disabled_reason = None
    if now is not None:
        feed.next_check_at = now


def _disable(feed: Feed, reason: str) -> None:
    feed.enabled = False
    feed.disabled_reason = reason
    feed.lease_owner = feed.lease_expires_at = None
