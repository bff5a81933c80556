"""Persistence of feeds, entries and fetches; the only package that imports SQLAlchemy.

``open_store(url)`` gives a ``Store`` on SQLite (embedded default: WAL, busy timeout,
foreign keys) or PostgreSQL (psycopg 3; several daemons lease due feeds with
``FOR UPDATE SKIP LOCKED``). Its methods take and return the frozen records of
``ingestd.store.records``; every database failure leaves as ``StorageError``. Its public
methods are the ones the rest of ingestd calls, no more (tests/store/test_api.py holds it);
tests build their state through them (tests/storehelp.py).
"""

from ingestd.store.engine import DEFAULT_BUSY_TIMEOUT_MS
from ingestd.store.entries import stored_key
from ingestd.store.migrate import head_revision, upgrade
from ingestd.store.records import (
    REMOVED_REASON,
    EntryMatch,
    EntryRecord,
    FailedEntry,
    FailureCounts,
    FeedConfig,
    FeedRecord,
    FetchAttempt,
    FetchRecord,
    IndexEntry,
    NewEntry,
    PollLookup,
    Pruned,
    RevisionRecord,
    ScheduleLag,
    SyncResult,
    TableStats,
)
from ingestd.store.store import Store, open_store
from ingestd.types import FeedState

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "REMOVED_REASON",
    "EntryRecord",
    "FailedEntry",
    "FailureCounts",
    "FeedConfig",
    "FeedRecord",
    "FeedState",
    "FetchAttempt",
    "FetchRecord",
    "IndexEntry",
    "EntryMatch",
    "PollLookup",
    "Pruned",
    "NewEntry",
    "RevisionRecord",
    "ScheduleLag",
    "Store",
    "SyncResult",
    "TableStats",
    "head_revision",
    "open_store",
    "stored_key",
    "upgrade",
]
