"""Which feeds are due and how a daemon leases them: locking leases on PostgreSQL
(``FOR UPDATE SKIP LOCKED``), one guarded UPDATE on SQLite; due feeds in due order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, UnaryExpression, and_, or_, select, update
from sqlalchemy.orm import Session

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


def lease_locking(
    session: Session, owner: str, due: ColumnElement[bool], until: datetime, limit: int
) -> Sequence[Feed]:
    """PostgreSQL: lock due rows, skipping rows another daemon is leasing right now."""
    query = (
        select(Feed)
        .where(due)
        .order_by(*due_order())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    feeds = session.scalars(query).all()
    for feed in feeds:
        feed.lease_owner = owner
        feed.lease_expires_at = until
    session.flush()
    return feeds


def lease_one_update(
    session: Session, owner: str, due: ColumnElement[bool], until: datetime, limit: int
) -> Sequence[Feed]:
    """SQLite: one UPDATE ... RETURNING, atomic because SQLite has a single writer."""
    due_ids = select(Feed.id).where(due).order_by(*due_order()).limit(limit)
    query = (
        update(Feed)
        .where(Feed.id.in_(due_ids.scalar_subquery()), due)
        .values(lease_owner=owner, lease_expires_at=until)
        .returning(Feed)
    )
    return session.scalars(query, execution_options={"synchronize_session": False}).all()
