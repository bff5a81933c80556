"""What ``ingestd reprocess`` reads and records: entries with a raw record, and the text
an archive file had before a reprocess rewrote it, kept as a revision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from ingestd.store.engine import Database
from ingestd.store.entries import pack, unpack
from ingestd.store.records import EntryRecord, to_record
from ingestd.store.schema import Entry, EntryRevision


class RewriteQueries:
    """Entries to rebuild from their raw records (mixed into ``Store``)."""

    _db: Database

    def raw_entries(
        self,
        archive_id: str,
        feed_ids: Sequence[int],
        *,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 200,
    ) -> list[EntryRecord]:
        """Entries of these feeds archived in this folder, by id above ``after_id``:
        those with a raw record and those without (the caller counts them)."""
        query = (
            select(Entry)
            .where(
                Entry.feed_id.in_(list(feed_ids)),
                Entry.id > after_id,
                Entry.archive_path.is_not(None),
                (Entry.archive_id == archive_id) | Entry.archive_id.is_(None),
            )
            .order_by(Entry.id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(Entry.first_seen_at >= since)
        with self._db.read() as session:
            return [to_record(EntryRecord, row) for row in session.scalars(query)]

    def entry_at(self, archive_path: str) -> EntryRecord | None:
        """The entry whose archive file is at this path (relative to the archive folder)."""
        with self._db.read() as session:
            row = session.scalars(select(Entry).where(Entry.archive_path == archive_path)).first()
            return None if row is None else to_record(EntryRecord, row)

    def keep_replaced_text(self, entry_id: int, previous: str, seen_at: datetime) -> bool:
        """Keep the text a reprocess is about to replace; False if it is kept already.

        Revision 1 without a text of its own is the archive file: it gets the file's
        text. Otherwise the text becomes a new revision with the latest revision's
        content hash (the feed item did not change, so polls see no change).
        """
        with self._db.write() as session:
            history = list(
                session.scalars(
                    select(EntryRevision)
                    .where(EntryRevision.entry_id == entry_id)
                    .order_by(EntryRevision.revision)
                )
            )
            if any(unpack(r.text) == previous for r in history):
                return False  # a run killed between this and its file's rewrite
            if history and history[0].revision == 1 and history[0].text is None:
                history[0].text = pack(previous)
                return True
            latest = history[-1] if history else None
            number = latest.revision + 1 if latest else 1
            session.add(
                EntryRevision(
                    entry_id=entry_id,
                    revision=number,
                    content_hash=latest.content_hash if latest else "",
                    seen_at=seen_at,
                    text=pack(previous),
                )
            )
            entry = session.get(Entry, entry_id)
            if entry is not None:
                entry.current_revision = number
            return True
