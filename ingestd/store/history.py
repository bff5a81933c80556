"""The daemon's lag as the database sees it, and the size of its history.

``schedule_lag`` and ``recent_start_delays`` let any process (``status``) say how far
behind the daemons are; the history half (pruning the fetch log, table sizes, giving
SQLite's free pages back) keeps months of running in bounded space.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select

from ingestd.store.engine import Database
from ingestd.store.records import ScheduleLag
from ingestd.store.schema import Feed, Fetch


class HistoryQueries:
    """The lag and history half of ``Store``."""

    _db: Database

    def schedule_lag(self, now: datetime) -> ScheduleLag:
        """Feeds due and waiting for a slot (enabled, check time come, not leased), and
        the check time of the one waiting longest."""
        waiting = and_(
            Feed.enabled.is_(True),
            or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now),
            or_(Feed.lease_expires_at.is_(None), Feed.lease_expires_at <= now),
        )
        query = select(func.count(), func.min(Feed.next_check_at)).where(waiting)
        with self._db.read() as session:
            count, oldest = session.execute(query).one()
            never = session.scalar(
                select(func.count()).where(waiting, Feed.next_check_at.is_(None))
            )
        # A never-polled feed is due since it was added: count it as due now.
        return ScheduleLag(int(count), now if never and oldest is None else oldest)

    def recent_start_delays(self, limit: int = 1000) -> list[float]:
        """Seconds from due to start of the latest ``limit`` polls that were due (one-off
        fetches of feeds not yet due are not delays), newest first."""
        query = (
            select(Fetch.started_at, Fetch.due_at)
            .where(Fetch.due_at.is_not(None))
            .order_by(Fetch.id.desc())
            .limit(limit)
        )
        with self._db.read() as session:
            rows = session.execute(query).all()
        return [
            (started - due).total_seconds()
            for started, due in rows
            if due is not None and due <= started
        ]
