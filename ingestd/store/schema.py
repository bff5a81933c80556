"""The database tables as typed SQLAlchemy 2 models.

Only portable column types are used so one schema runs unchanged on SQLite and
PostgreSQL. Every timestamp is stored in UTC and comes back timezone-aware.
Changing a model means adding an alembic revision under ``migrations/versions``;
``tests/store/test_migrations.py`` fails until the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ingestd.types import POLLED

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FEED_FORMATS = ("feed", "repost")
FETCH_OUTCOMES = tuple(outcome.value for outcome in POLLED)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zone type and returns naive values, so values are stored as
    naive UTC there and get ``tzinfo=UTC`` back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes (their zone is a guess) and convert to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (pass a timezone-aware UTC time)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the driver handed back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: Tables the migrations make outside these models (the search index: an FTS5 virtual
#: table and its shadow tables on SQLite); a schema comparison skips them.
UNMODELLED_PREFIX = "entry_search"


def is_modelled(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name``: False for the tables the models do not describe."""
    return not (type_ == "table" and name is not None and name.startswith(UNMODELLED_PREFIX))


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base holding the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Feed(Base):
    """A configured feed and its polling state."""

    __tablename__ = "feeds"
    __table_args__ = (CheckConstraint(_in("format", FEED_FORMATS), name="format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    # The configured URL; ``url`` may differ after a permanent redirect.
    original_url: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    consecutive_errors: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Entry(Base):
    """One item of a feed; its content history lives in ``entry_revisions``."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("feed_id", "identity_key"),
        # Two entries of one feed must never share a file number.
        UniqueConstraint("feed_id", "file_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    identity_key: Mapped[str] = mapped_column(Text)
    guid: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # True when the item had no date and ``published_at`` is the first-seen time.
    published_is_fallback: Mapped[bool] = mapped_column(Boolean)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archive_path: Mapped[str | None] = mapped_column(Text, unique=True)
    file_id: Mapped[int | None] = mapped_column(Integer)
    # The archive folder holding the file (its .ingestd-archive-id) and the daemon
    # that wrote it: daemons on several machines may each have their own folder.
    archive_id: Mapped[str | None] = mapped_column(String(64))
    archived_by: Mapped[str | None] = mapped_column(String(200))
    current_revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The WARC record the entry was built from (``ingestd.capture``): file and offset.
    raw_file: Mapped[str | None] = mapped_column(Text)
    raw_offset: Mapped[int | None] = mapped_column(BigInteger)


class EntryRevision(Base):
    """One distinct content of an entry, numbered from 1.

    ``text`` is the revision as format A renders the feed item (zlib-compressed UTF-8).
    It is empty for revision 1 of an entry archived from the feed alone (its archive file
    is that text) and for revisions recorded before migration 0003.
    """

    __tablename__ = "entry_revisions"
    __table_args__ = (UniqueConstraint("entry_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[bytes | None] = mapped_column(LargeBinary)


class PageFailureRow(Base):
    """An entry whose article page could not be archived yet: what it is, how it failed.

    The row holds what archiving the entry needs (it may have left the feed by its next
    try) and the retry state ``decide.page_failed`` keeps; it goes when the entry's row
    is stored.
    """

    __tablename__ = "page_failures"
    __table_args__ = (UniqueConstraint("feed_id", "identity_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    identity_key: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    guid: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text)
    # None once given up (then ``given_up_reason`` says why).
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    given_up_reason: Mapped[str | None] = mapped_column(Text)


class Fetch(Base):
    """One fetch attempt of a feed, successful or not."""

    __tablename__ = "fetches"
    __table_args__ = (
        CheckConstraint(_in("outcome", FETCH_OUTCOMES), name="outcome"),
        # ``status`` shows the latest attempts of one feed.
        Index(None, "feed_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    new_entries: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # When the feed was due (its next check when leased): started_at - due_at is the
    # poll's start delay. None for rows older than 0005.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
