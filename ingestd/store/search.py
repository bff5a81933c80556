"""The search index of entries: their titles and archived texts, found by any substring.

SQLite keeps it in an FTS5 table with the trigram tokenizer (rowid = entry id), PostgreSQL
in ``entry_search`` with a pg_trgm GIN index (migration 0004): both find a phrase of any
script, Chinese included, in the middle of a text, ignoring ASCII case. A text shorter
than three characters has no trigram and is looked for row by row.

Indexing a text costs about as much as archiving its entry (bench/RESULTS.md), so rows
are indexed in chunks by ``ingestd.indexer`` after they are written, not in the write's
transaction; ``unindexed`` names the entries still to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from ingestd.store.engine import Database
from ingestd.store.records import EntryRecord, to_record
from ingestd.store.schema import Entry, Feed

#: Entries of this archive folder (or of none recorded: rows older than migration 0002)
#: that have a file but no index row yet, oldest first, above an id (the rows below it
#: are not read: a catch-up going chunk by chunk does not scan its own work again).
_UNINDEXED = {
    "sqlite": "SELECT e.id, e.archive_path, e.title FROM entries e "
    "WHERE e.id > :after AND e.archive_path IS NOT NULL "
    "AND (e.archive_id = :aid OR e.archive_id IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM entry_search s WHERE s.rowid = e.id) ORDER BY e.id LIMIT :n",
    "postgresql": "SELECT e.id, e.archive_path, e.title FROM entries e "
    "WHERE e.id > :after AND e.archive_path IS NOT NULL "
    "AND (e.archive_id = :aid OR e.archive_id IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM entry_search s WHERE s.entry_id = e.id) "
    "ORDER BY e.id LIMIT :n",
}
_UPSERT = {
    "sqlite": "INSERT OR REPLACE INTO entry_search (rowid, title, body) "
    "VALUES (:id, :title, :body)",
    "postgresql": "INSERT INTO entry_search (entry_id, title, body) VALUES (:id, :title, :body) "
    "ON CONFLICT (entry_id) DO UPDATE SET title = excluded.title, body = excluded.body",
}
#: An entry's index row goes with the entry (``Store.delete_entry``): SQLite reuses
#: the ids of deleted rows.
DELETE = {
    "sqlite": "DELETE FROM entry_search WHERE rowid = :id",
    "postgresql": "DELETE FROM entry_search WHERE entry_id = :id",
}
#: Matching entry ids, newest first. SQLite: an FTS5 phrase of trigrams (three
#: characters or more), else LIKE over the indexed texts; PostgreSQL: ILIKE, which the
#: trigram index serves from three characters on.
_MATCH = {
    ("sqlite", True): "SELECT rowid FROM entry_search WHERE entry_search MATCH :phrase "
    "ORDER BY rowid DESC",
    ("sqlite", False): "SELECT rowid FROM entry_search "
    "WHERE title LIKE :pattern ESCAPE '\\' OR body LIKE :pattern ESCAPE '\\' ORDER BY rowid DESC",
    ("postgresql", True): "SELECT entry_id FROM entry_search "
    "WHERE (title || ' ' || body) ILIKE :pattern ESCAPE '\\' ORDER BY entry_id DESC",
}
_MATCH[("postgresql", False)] = _MATCH[("postgresql", True)]
_BODIES = {
    "sqlite": "SELECT rowid, body FROM entry_search WHERE rowid IN :ids",
    "postgresql": "SELECT entry_id, body FROM entry_search WHERE entry_id IN :ids",
}


class SearchQueries:
    """Index and search entries' texts (mixed into ``Store``)."""

    _db: Database

    def unindexed(
        self, archive_id: str, limit: int = 500, *, after_id: int = 0
    ) -> list[tuple[int, str, str | None]]:
        """(entry id, archive path, title) of entries of this folder not indexed yet, of
        ids above ``after_id``, lowest first."""
        params = {"aid": archive_id, "n": limit, "after": after_id}
        with self._db.read_rows() as connection:
            rows = connection.execute(text(_UNINDEXED[self._db.dialect]), params)
            return [(entry_id, path, title) for entry_id, path, title in rows]

    def newest_entry_id(self) -> int:
        """The highest entry id (0 with no entries): the entries the background indexer
        has not looked at yet are above it."""
        with self._db.read_rows() as connection:
            return int(connection.scalar(select(func.max(Entry.id))) or 0)

    def index_texts(self, texts: Sequence[tuple[int, str, str]]) -> None:
        """Index (entry id, title, body) rows, replacing what an entry had."""
        if not texts:
            return
        rows = [dict(id=entry_id, title=title, body=body) for entry_id, title, body in texts]
        with self._db.write_rows() as connection:
            connection.execute(text(_UPSERT[self._db.dialect]), rows)

    def indexed_texts(self, entry_ids: Sequence[int]) -> dict[int, str]:
        """Entry id -> the text indexed for it (its file's words), of these entries."""
        if not entry_ids:
            return {}
        query = text(_BODIES[self._db.dialect]).bindparams(bindparam("ids", expanding=True))
        with self._db.read_rows() as connection:
            rows = connection.execute(query, {"ids": list(entry_ids)})
            return {entry_id: body for entry_id, body in rows}

    def search_entries(
        self,
        phrase: str,
        names: Sequence[str] = (),
        *,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[tuple[str, EntryRecord]]:
        """(feed name, entry) of indexed entries whose title or text holds ``phrase``,
        newest first: at most ``limit``, of the named feeds (or all), seen since ``since``."""
        long = len(phrase) >= 3
        query = text(_MATCH[(self._db.dialect, long)])
        params = {"phrase": '"' + phrase.replace('"', '""') + '"', "pattern": _like(phrase)}
        found: list[tuple[str, EntryRecord]] = []
        with self._db.read() as session:
            ids = session.execute(query, params).scalars()
            # Matches come newest first; entries are looked up a page at a time, so a
            # common phrase costs only as many lookups as the answer needs.
            while len(found) < limit:
                page = [entry_id for entry_id, _ in zip(ids, range(200), strict=False)]
                if not page:
                    break
                found += _entries(session, page, names, since)
        return found[:limit]


def _entries(
    session: Session, ids: list[int], names: Sequence[str], since: datetime | None
) -> list[tuple[str, EntryRecord]]:
    query = select(Feed.name, Entry).join(Feed, Feed.id == Entry.feed_id).where(Entry.id.in_(ids))
    if names:
        query = query.where(Feed.name.in_(list(names)))
    if since is not None:
        query = query.where(Entry.first_seen_at >= since)
    rows = {row.id: (name, to_record(EntryRecord, row)) for name, row in session.execute(query)}
    return [rows[i] for i in ids if i in rows]


def _like(phrase: str) -> str:
    escaped = phrase.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
