"""What is archived where: the rows start-up repair checks against the files, the site
indexes' lines, and the counts ``status`` shows. The third part of ``Store``."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence

from sqlalchemy import bindparam, delete, func, or_, select, text

from ingestd.store import search
from ingestd.store.engine import Database
from ingestd.store.entries import _chunks
from ingestd.store.records import EntryRecord, IndexEntry, to_record
from ingestd.store.schema import Entry, EntryRevision, Feed


class ArchivedQueries:
    """Archive paths, site index lines and counts of ``Store``."""

    _db: Database

    def entries_without_file(self, feed_id: int | None = None) -> list[EntryRecord]:
        """Entries whose archive file was never recorded (all feeds, or one)."""
        query = select(Entry).where(Entry.archive_path.is_(None))
        if feed_id is not None:
            query = query.where(Entry.feed_id == feed_id)
        with self._db.read() as session:
            rows = session.scalars(query.order_by(Entry.feed_id, Entry.id))
            return [to_record(EntryRecord, row) for row in rows]

    def archive_paths_in_order(
        self, archive_id: str | None = None
    ) -> Generator[tuple[str, int], None, None]:
        """(archive path, entry id) of the entries with a file, in code-point order of the paths.

        With ``archive_id``, only the files of that archive folder, plus rows from
        before archive ids were recorded. Read as they are used, for start-up repair,
        which merges them with a walk of the archive sorted the same way and so never
        holds either in memory. The read transaction lasts until the iterator is
        exhausted or closed.
        """
        column = Entry.archive_path
        query = select(column, Entry.id).where(column.is_not(None), column != "")
        if archive_id is not None:
            query = query.where(or_(Entry.archive_id == archive_id, Entry.archive_id.is_(None)))
        # Code-point order is the byte order of UTF-8: SQLite's default collation;
        # PostgreSQL's may follow a locale, its "C" collation does not.
        query = query.order_by(column if self._db.dialect == "sqlite" else column.collate("C"))
        with self._db.read_rows() as connection:
            rows = connection.execution_options(yield_per=2000).execute(query)
            yield from rows  # type: ignore[misc]  # no NULL path passes the WHERE

    def recorded_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of these archive paths a row records (start-up repair's second look)."""
        found: set[str] = set()
        with self._db.read_rows() as connection:
            for chunk in _chunks(sorted(set(paths))):
                query = select(Entry.archive_path).where(Entry.archive_path.in_(chunk))
                found.update(path for path in connection.scalars(query) if path)
        return found

    def delete_entry(self, entry_id: int) -> None:
        """Forget an entry and its revisions (reconciliation of a lost file)."""
        with self._db.write() as session:
            session.execute(delete(EntryRevision).where(EntryRevision.entry_id == entry_id))
            session.execute(text(search.DELETE[self._db.dialect]), {"id": entry_id})
            session.execute(delete(Entry).where(Entry.id == entry_id))

    def index_entries(
        self, feed_ids: Iterable[int], archive_id: str, limit: int
    ) -> dict[int, list[IndexEntry]]:
        """Per feed, its ``limit`` entries with the newest files in the archive folder
        ``archive_id`` (the lowest file numbers), for its site index; one read.

        A query per feed, walking the (feed, file number) index in order and stopping
        after ``limit`` rows: the site index is rewritten after every poll that archived,
        and must not cost a read of all the feed's rows each time.
        """
        query = (
            select(Entry.title, Entry.published_at, Entry.archive_path)
            .where(Entry.feed_id == bindparam("feed"), Entry.archive_id == archive_id,
                   Entry.archive_path.is_not(None))
            .order_by(Entry.file_id.asc())
            .limit(limit)
        )  # fmt: skip
        found: dict[int, list[IndexEntry]] = {}
        with self._db.read_rows() as connection:
            for feed_id in feed_ids:
                rows = connection.execute(query, {"feed": feed_id})
                entries = [IndexEntry(*row) for row in rows]  # type: ignore[arg-type]  # no NULL path
                if entries:
                    found[feed_id] = entries
        return found

    def archived_by_counts(self) -> dict[str, dict[str, int]]:
        """Per feed name: how many entries each daemon archived."""
        query = (
            select(Feed.name, Entry.archived_by, func.count(Entry.id))
            .join(Entry, Entry.feed_id == Feed.id)
            .group_by(Feed.name, Entry.archived_by)
        )
        counts: dict[str, dict[str, int]] = {}
        with self._db.read() as session:
            for name, who, count in session.execute(query):
                counts.setdefault(name, {})[who or "unknown"] = count
        return counts

    def entry_counts(self) -> dict[str, int]:
        """Number of entries per feed name, zero included."""
        query = (
            select(Feed.name, func.count(Entry.id))
            .outerjoin(Entry, Entry.feed_id == Feed.id)
            .group_by(Feed.id, Feed.name)
        )
        with self._db.read() as session:
            return {name: count for name, count in session.execute(query)}
