"""Which feeds are due and how a daemon leases them: one guarded UPDATE whose subquery
locks its rows ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; due feeds in due order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, UnaryExpression, and_, or_, select, update

from ingestd.store.records import FeedRecord
from ingestd.store.schema import Feed


def due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Feed.enabled.is_(True),
        or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now),
        or_(Feed.lease_expires_at.is_(None), Feed.lease_expires_at <= now),
    )


def due_order() -> tuple[UnaryExpression[datetime | None], UnaryExpression[int]]:
    # Never-checked feeds first, then the most overdue; id breaks ties deterministically.
    return (Feed.next_check_at.asc().nulls_first(), Feed.id.asc())


def record_due_order(record: FeedRecord) -> tuple[bool, datetime | None, int]:
    due = record.next_check_at
    return (due is not None, due, record.id)


def lease_update(
    connection: Connection,
    owner: str,
    due: ColumnElement[bool],
    until: datetime,
    limit: int,
    *,
    skip_locked: bool,
) -> Sequence[Row[Any]]:
    """Lease the first ``limit`` due feeds in one UPDATE ... RETURNING; their rows.

    With ``skip_locked`` (PostgreSQL) the subquery locks the rows it picks and skips rows
    another daemon's lease is locking right now, so daemons leasing at the same moment
    take different feeds and none waits for another; the outer ``due`` is checked again
    on the row as it is once locked. SQLite has a single writer: the statement is atomic.
    One statement, not a locking SELECT and an UPDATE per feed: a round trip and a
    statement per leased feed were most of what leasing cost on PostgreSQL. Core, not
    the ORM: its bulk UPDATE machinery cost the daemon more than the statement.
    """
    due_ids = select(Feed.id).where(due).order_by(*due_order()).limit(limit)
    if skip_locked:
        due_ids = due_ids.with_for_update(skip_locked=True)
    query = (
        update(Feed)
        .where(Feed.id.in_(due_ids.scalar_subquery()), due)
        .values(lease_owner=owner, lease_expires_at=until)
        .returning(*Feed.__table__.columns)
    )
    return connection.execute(query).all()
