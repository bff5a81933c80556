"""The ``Store`` façade and ``open_store``, the way in for the rest of ingestd."""

from __future__ import annotations

from types import TracebackType

from ingestd.store.archived import ArchivedQueries
from ingestd.store.engine import DEFAULT_BUSY_TIMEOUT_MS, Database, open_database
from ingestd.store.entries import EntryQueries
from ingestd.store.failures import FailureQueries
from ingestd.store.feeds import FeedQueries
from ingestd.store.history import HistoryQueries
from ingestd.store.migrate import upgrade_database
from ingestd.store.rewrites import RewriteQueries
from ingestd.store.search import SearchQueries


class Store(
    FeedQueries,
    EntryQueries,
    ArchivedQueries,
    FailureQueries,
    SearchQueries,
    RewriteQueries,
    HistoryQueries,
):
    """Feeds, entries and fetches in SQLite or PostgreSQL.

    Every method is one short transaction, takes and returns plain records from
    ``ingestd.store.records``, and raises only ``StorageError`` for database failures.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def target(self) -> str:
        """The database file, or the server URL without password."""
        return self._db.target

    def close(self) -> None:
        """Close every pooled connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, migrate: bool = True
) -> Store:
    """Open the database at ``url`` and (unless ``migrate`` is False) bring its schema to head.

    ``url`` is ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``.
    """
    db = open_database(url, busy_timeout_ms=busy_timeout_ms)
    try:
        if migrate:
            upgrade_database(db)
    except BaseException:
        db.close()
        raise
    return Store(db)
