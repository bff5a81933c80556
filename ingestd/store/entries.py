"""Entry queries: identity, content revisions and archive file bookkeeping.

An entry is keyed by (feed, identity key); content changes add revisions to the same
entry, and each entry owns at most one archive file.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from ingestd import naming
from ingestd.errors import StorageError
from ingestd.store.engine import Database
from ingestd.store.failures import RESOLVE
from ingestd.store.records import (
    EntryMatch,
    EntryRecord,
    NewEntry,
    PollLookup,
    RevisionRecord,
    to_record,
)
from ingestd.store.schema import Entry, EntryRevision, Feed

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.sql.dml import ReturningInsert

V = TypeVar("V")
_REVISIONS = insert(EntryRevision)  # Core executemany: no ORM objects for rows never read back

# Built once: constructing a statement costs more than running it on a small feed.
_MATCH_COLUMNS = select(Entry.id, Entry.identity_key, Entry.link, Entry.current_revision)
_MATCH_BY_KEY = _MATCH_COLUMNS.where(
    Entry.feed_id == bindparam("feed"), Entry.identity_key.in_(bindparam("values", expanding=True))
)
_MATCH_BY_LINK = _MATCH_COLUMNS.where(
    Entry.feed_id == bindparam("feed"), Entry.link.in_(bindparam("values", expanding=True))
)
_ANY_ENTRY = select(Entry.id).where(Entry.feed_id == bindparam("feed")).limit(1)
_LOWEST_FILE_ID = select(func.min(Entry.file_id)).where(Entry.feed_id == bindparam("feed"))
_NEWEST = (
    select(EntryRevision.entry_id, func.max(EntryRevision.revision).label("revision"))
    .where(EntryRevision.entry_id.in_(bindparam("ids", expanding=True)))
    .group_by(EntryRevision.entry_id)
    .subquery()
)
_LATEST_HASHES = select(EntryRevision.entry_id, EntryRevision.content_hash).join(
    _NEWEST,
    (EntryRevision.entry_id == _NEWEST.c.entry_id) & (EntryRevision.revision == _NEWEST.c.revision),
)

#: Longer identity keys are stored as their hash: PostgreSQL cannot index
#: arbitrarily long text (a btree row holds at most about 2.7 kB).
MAX_KEY_BYTES = 1024


def stored_key(identity_key: str) -> str:
    """The identity key as stored: itself, or ``sha256:<hex>`` when longer than 1 kB."""
    data = identity_key.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_KEY_BYTES:
        return identity_key
    return "sha256:" + hashlib.sha256(data).hexdigest()


class EntryQueries:
    """The entry half of ``Store``."""

    _db: Database

    def get_entry(self, entry_id: int) -> EntryRecord | None:
        """The entry with this id, or None."""
        with self._db.read() as session:
            entry = session.get(Entry, entry_id)
            return None if entry is None else to_record(EntryRecord, entry)

    def add_entry_groups(
        self,
        groups: Sequence[tuple[int, Sequence[NewEntry], datetime]],
        *,
        archive_id: str | None = None,
        archived_by: str | None = None,
        resolved: Sequence[tuple[int, str]] = (),
    ) -> list[set[str]]:
        """Insert entries of several feeds, each with its file, in one transaction (a
        group commit).

        ``groups`` holds (feed id, entries, first seen at); the result holds, for each
        group in order, the identity keys actually inserted: one that already existed (a
        concurrent writer won) is skipped, and its caller's file must go.

        ``resolved`` names (feed id, identity key) of page failures that these entries
        settle: they go in the same transaction.
        """
        rows = [
            dict(feed_id=feed_id, identity_key=stored_key(e.identity_key), guid=e.guid,
                 link=e.link, title=e.title, published_at=e.published_at,
                 published_is_fallback=e.published_is_fallback, first_seen_at=seen_at,
                 current_revision=1, created_at=seen_at, archive_path=e.archive_path,
                 file_id=e.file_id, archive_id=archive_id, archived_by=archived_by,
                 raw_file=e.raw_file, raw_offset=e.raw_offset)
            for feed_id, entries, seen_at in groups for e in entries
        ]  # fmt: skip
        if not rows:
            return [set() for _ in groups]
        hashes = {
            (feed_id, stored_key(e.identity_key)): (e.content_hash, seen_at, e.revision_text)
            for feed_id, entries, seen_at in groups
            for e in entries
        }
        # One cached statement run as an executemany: SQLAlchemy batches it into
        # multi-row INSERT ... RETURNING ("insertmanyvalues") without compiling a
        # new statement for every batch, as .values(rows) would.
        insert = _new_entries(self._db.dialect)
        with self._db.write_rows() as connection:
            if resolved:
                connection.execute(
                    RESOLVE, [dict(feed=feed, key=stored_key(key)) for feed, key in resolved]
                )
            inserted = connection.execute(insert, rows).all()
            if inserted:
                connection.execute(
                    _REVISIONS,
                    [
                        dict(
                            entry_id=entry_id,
                            revision=1,
                            content_hash=hashes[feed, key][0],
                            seen_at=hashes[feed, key][1],
                            text=pack(hashes[feed, key][2]),
                        )
                        for entry_id, feed, key in inserted
                    ],
                )
        stored = {(feed, key) for _id, feed, key in inserted}
        return [
            {e.identity_key for e in entries if (feed_id, stored_key(e.identity_key)) in stored}
            for feed_id, entries, _seen in groups
        ]

    def add_revisions(
        self, changes: Sequence[tuple[int, str, str | None]], seen_at: datetime
    ) -> int:
        """Record new content (entry id, content hash, text) for several entries; returns
        how many were new."""
        return sum(
            1
            for entry_id, digest, text in changes
            if self._add_revision(entry_id, digest, seen_at, text)
        )

    def _add_revision(
        self, entry_id: int, content_hash: str, seen_at: datetime, text: str | None = None
    ) -> int | None:
        """Record new content and its text; return its revision number, or None if
        unchanged from the latest."""
        with self._db.write() as session:
            entry = _entry_by_id(session, entry_id, self._db)
            latest = session.scalars(
                select(EntryRevision)
                .where(EntryRevision.entry_id == entry_id)
                .order_by(EntryRevision.revision.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.content_hash == content_hash:
                return None
            number = 1 if latest is None else latest.revision + 1
            session.add(_revision(entry_id, number, content_hash, seen_at, text))
            entry.current_revision = number
            return number

    def revisions(self, entry_id: int) -> list[RevisionRecord]:
        """Every revision of an entry, oldest first."""
        query = (
            select(EntryRevision)
            .where(EntryRevision.entry_id == entry_id)
            .order_by(EntryRevision.revision)
        )
        with self._db.read() as session:
            return [
                to_record(RevisionRecord, row, text=unpack(row.text))
                for row in session.scalars(query)
            ]

    def list_entries(
        self, names: Sequence[str] = (), *, revised: bool = False, limit: int = 1000
    ) -> list[tuple[str, EntryRecord]]:
        """(feed name, entry) of the named feeds (or all), newest file first; with
        ``revised``, only entries with more than one revision."""
        query = select(Feed.name, Entry).join(Feed, Feed.id == Entry.feed_id)
        if names:
            query = query.where(Feed.name.in_(list(names)))
        if revised:
            query = query.where(Entry.current_revision > 1)
        query = query.order_by(Feed.name, Entry.file_id.asc(), Entry.id).limit(limit)
        with self._db.read() as session:
            return [(name, to_record(EntryRecord, row)) for name, row in session.execute(query)]

    def next_file_id(self, feed_id: int) -> int:
        """The next file number of a feed: 0xFFFFF first, then one below the lowest used."""
        with self._db.read_rows() as connection:
            found = naming.next_below(connection.scalar(_LOWEST_FILE_ID, {"feed": feed_id}))
        if found is None:
            raise StorageError(f"feed {feed_id} has used every file number: {self._db.target}")
        return found

    def has_entries(self, feed_id: int) -> bool:
        """Whether the feed has any stored entry (False before its first archived one)."""
        with self._db.read_rows() as connection:
            return connection.scalar(_ANY_ENTRY, {"feed": feed_id}) is not None

    def poll_lookup(
        self, feed_id: int, identity_keys: Iterable[str], links: Iterable[str]
    ) -> PollLookup:
        """The entries of ``feed_id`` matching any key or link, and the next file number.

        One read transaction of plain column queries: a cold cycle makes one lookup
        per feed, and loading ORM objects and opening a transaction per question cost
        more than the questions. A match carries the caller's key even when the key is
        stored as its hash (keys longer than ``MAX_KEY_BYTES``).
        """
        by_stored = {stored_key(k): k for k in identity_keys}
        rows: dict[int, Row[int, str, str | None, int]] = {}
        with self._db.read_rows() as connection:
            for query, values in (
                (_MATCH_BY_KEY, sorted(by_stored)),
                (_MATCH_BY_LINK, sorted({v for v in links if v})),
            ):
                for chunk in _chunks(values):
                    found = connection.execute(query, {"feed": feed_id, "values": chunk})
                    rows.update((row[0], row) for row in found)
            hashes = _latest_hashes(connection, list(rows))
            lowest = connection.scalar(_LOWEST_FILE_ID, {"feed": feed_id})
        matches = [
            EntryMatch(
                entry_id, by_stored.get(key, key), link or "", hashes.get(entry_id, ""), revisions
            )
            for entry_id, key, link, revisions in rows.values()
        ]
        return PollLookup(matches, naming.next_below(lowest))


def _dialect_insert(dialect: str) -> Callable[[type[Entry]], postgresql.Insert | sqlite.Insert]:
    # Both dialects spell upserts the same way, but through their own insert(); only
    # the one in use is imported (the PostgreSQL dialect costs 50 ms of start-up).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


@functools.cache
def _new_entries(dialect: str) -> ReturningInsert[int, int, str]:
    """New entries, skipping any another writer stored first (built once per dialect)."""
    return (
        _dialect_insert(dialect)(Entry)
        .on_conflict_do_nothing(index_elements=["feed_id", "identity_key"])
        .returning(Entry.id, Entry.feed_id, Entry.identity_key)
    )


def _entry_by_id(session: Session, entry_id: int, db: Database) -> Entry:
    entry = session.get(Entry, entry_id)
    if entry is None:
        raise StorageError(f"no entry with id {entry_id}: {db.target}")
    return entry


def _revision(
    entry_id: int, number: int, content_hash: str, seen_at: datetime, text: str | None = None
) -> EntryRevision:
    return EntryRevision(
        entry_id=entry_id,
        revision=number,
        content_hash=content_hash,
        seen_at=seen_at,
        text=pack(text),
    )


def pack(text: str | None) -> bytes | None:
    """A revision's text as stored: UTF-8, zlib-compressed (news text shrinks about 3x)."""
    return None if text is None else zlib.compress(text.encode("utf-8", "surrogatepass"))


def unpack(data: bytes | None) -> str | None:
    """The text ``pack`` stored."""
    return None if data is None else zlib.decompress(data).decode("utf-8", "surrogatepass")


def _chunks(values: list[V], size: int = 500) -> Iterator[list[V]]:
    # Bound the IN list: SQLite allows at most 32766 parameters per statement.
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _latest_hashes(connection: Connection, entry_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for ids in _chunks(entry_ids):
        found.update(
            (entry_id, digest)
            for entry_id, digest in connection.execute(_LATEST_HASHES, {"ids": ids})
        )
    return found
