"""The daemon's lag as the database sees it, and the size of its history.

``schedule_lag`` and ``recent_start_delays`` let any process (``status``) say how far
behind the daemons are; the history half (pruning the fetch log, table sizes, giving
SQLite's free pages back) keeps months of running in bounded space.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Delete, delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from ingestd.store.engine import Database
from ingestd.store.leasing import due
from ingestd.store.records import Pruned, ScheduleLag, TableStats
from ingestd.store.schema import UNMODELLED_PREFIX, Base, Feed, Fetch


class HistoryQueries:
    """The lag and history half of ``Store``."""

    _db: Database

    def schedule_lag(self, now: datetime) -> ScheduleLag:
        """Feeds due and waiting for a slot (enabled, check time come, not leased), and
        the check time of the one waiting longest."""
        # count(next_check_at) leaves out the never-polled feeds (due since they were added).
        query = select(
            func.count(), func.count(Feed.next_check_at), func.min(Feed.next_check_at)
        ).where(due(now))
        with self._db.read() as session:
            count, checked, oldest = session.execute(query).one()
        # A never-polled feed is due since it was added: count it as due now.
        return ScheduleLag(int(count), now if count > checked and oldest is None else oldest)

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

    def prune_fetches(
        self,
        before: datetime,
        keep_last: int,
        *,
        after_feed: int = 0,
        feeds: int = 200,
        rows: int = 1000,
    ) -> Pruned:
        """Delete fetch log rows older than ``before``, keeping each feed's newest
        ``keep_last`` whatever their age; one short transaction over the feeds with an id
        above ``after_feed``, at most ``feeds`` of them and ``rows`` rows.

        Returns what it deleted, where the next call goes on (``next_feed``), and whether
        every feed was seen (the pass is complete).
        """
        feed_ids = select(Feed.id).where(Feed.id > after_feed).order_by(Feed.id).limit(feeds)
        # Two statements a step, however many feeds: a statement or two per feed made a
        # pass over 1,000 feeds cost two seconds of the daemon's CPU with nothing to delete.
        with self._db.write_rows(bookkeeping=True) as connection:
            ids = list(connection.scalars(feed_ids))
            deleted = connection.execute(_prune_step(ids, before, keep_last, rows)).rowcount
        if deleted >= rows:
            return Pruned(deleted, after_feed, done=False)  # more may be left: again
        if len(ids) == feeds:
            return Pruned(deleted, ids[-1], done=False)
        return Pruned(deleted, 0, done=True)

    def table_stats(self) -> list[TableStats]:
        """Rows and bytes (table with its indexes; None where the database cannot say)
        of each of ingestd's tables."""
        tables = sorted(Base.metadata.tables)
        with self._db.read() as session:
            counts = {
                name: session.scalar(select(func.count()).select_from(Base.metadata.tables[name]))
                for name in tables
            }
            sizes = _sizes(session, self._db.dialect, tables)
        return [TableStats(name, int(counts[name] or 0), sizes.get(name)) for name in tables]

    def database_bytes(self) -> tuple[int, int]:
        """(size of the database, of it free pages waiting to be given back) in bytes; on
        PostgreSQL the database's size and 0 (autovacuum reuses the space)."""
        with self._db.read() as session:
            if self._db.dialect != "sqlite":
                size = session.scalar(text("SELECT pg_database_size(current_database())"))
                return int(size or 0), 0
            page = int(session.scalar(text("PRAGMA page_size")) or 0)
            pages = int(session.scalar(text("PRAGMA page_count")) or 0)
            free = int(session.scalar(text("PRAGMA freelist_count")) or 0)
        return page * pages, page * free

    def reclaim_space(self, pages: int | None = None) -> int:
        """SQLite: give up to ``pages`` free pages (all if None) back to the file system
        (an incremental vacuum; a database made before auto_vacuum was on needs one full
        ``vacuum`` first). Returns the bytes given back; 0 on PostgreSQL (autovacuum)."""
        if self._db.dialect != "sqlite":
            return 0
        with self._db.errors("giving free pages back"):
            # The driver's own connection and executescript: the statement frees one
            # page per step, and only executescript steps it to the end (the driver's
            # execute stops after the first step of a statement without result columns).
            raw = self._db.engine.raw_connection()
            try:
                read = raw.cursor()
                mode = read.execute("PRAGMA auto_vacuum").fetchone()[0]
                before = read.execute("PRAGMA freelist_count").fetchone()[0]
                if mode != 2 or not before:  # 2: incremental
                    return 0
                count = "" if pages is None else f"({int(pages)})"
                read.executescript(f"PRAGMA incremental_vacuum{count};")
                after = read.execute("PRAGMA freelist_count").fetchone()[0]
                page = read.execute("PRAGMA page_size").fetchone()[0]
                read.close()
            finally:
                raw.close()
        return int((before - after) * page)

    def vacuum(self) -> None:
        """SQLite: rewrite the whole database with incremental auto-vacuum on, so later
        prunes can give space back (needs as much free disk as the database); PostgreSQL:
        ``VACUUM (ANALYZE)`` of ingestd's tables (what autovacuum does when it is on)."""
        if self._db.dialect != "sqlite":
            self._vacuum_tables(_TABLES["tables"])
            return
        with self._db.errors("vacuum"):
            # The driver's own connection: VACUUM cannot run inside the transaction
            # every SQLAlchemy connection begins.
            raw = self._db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cursor.execute("VACUUM")
                cursor.close()
            finally:
                raw.close()

    def tables_without_autovacuum(self) -> list[str]:
        """PostgreSQL: ingestd's tables the server's autovacuum leaves alone (off for the
        server, or for the table); [] when it covers them all, and on SQLite."""
        if self._db.dialect != "postgresql":
            return []
        with self._db.read_rows() as connection:
            return list(connection.execute(_NOT_AUTOVACUUMED, _TABLES).scalars())

    def vacuum_dead_rows(self, tables: Sequence[str]) -> list[str]:
        """PostgreSQL: vacuum (and analyze) each of ``tables`` (those autovacuum leaves
        alone: ``tables_without_autovacuum``) whose dead rows passed the threshold the
        server's autovacuum would act on; returns their names. Every update leaves a dead
        row version behind (two per poll in ``feeds``): left there, they slow every lease a
        little more. A table another process is vacuuming is skipped."""
        if self._db.dialect != "postgresql" or not tables:
            return []
        with self._db.read_rows() as connection:
            due = list(connection.execute(_DEAD_PAST_THRESHOLD, {"tables": list(tables)}).scalars())
        self._vacuum_tables(due)
        return due

    def _vacuum_tables(self, tables: Sequence[str]) -> None:
        if not tables:
            return
        quote = self._db.engine.dialect.identifier_preparer.quote
        # VACUUM cannot run inside a transaction block: an autocommit connection.
        with self._db.errors("vacuum"), self._db.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in tables:
                connection.execute(text(f"VACUUM (SKIP_LOCKED, ANALYZE) {quote(table)}"))


def _prune_step(ids: list[int], before: datetime, keep_last: int, rows: int) -> Delete:
    """Delete up to ``rows`` fetches of the feeds ``ids`` older than ``before``, but none
    of a feed's newest ``keep_last`` (so none of a feed with fewer)."""
    doomed = select(Fetch.id).where(Fetch.feed_id.in_(ids), Fetch.started_at < before)
    if keep_last > 0:
        newer = aliased(Fetch)
        kth = (
            select(newer.started_at)
            .where(newer.feed_id == Fetch.feed_id)
            .order_by(newer.started_at.desc())
            .offset(keep_last - 1)
            .limit(1)
            .scalar_subquery()
        )
        doomed = doomed.where(Fetch.started_at < kth)
    return delete(Fetch).where(Fetch.id.in_(doomed.limit(rows).scalar_subquery()))


#: ingestd's tables (the search index's too), by the names the search path finds them under.
_TABLES = {"tables": sorted([*Base.metadata.tables, UNMODELLED_PREFIX])}
#: Autovacuum is off for the server, or turned off for the table (``autovacuum_enabled``).
_AUTOVACUUM_OFF = (
    "(current_setting('autovacuum') = 'off' OR EXISTS (SELECT 1 FROM unnest(c.reloptions) o "
    "WHERE o ~* '^autovacuum_enabled=(f|of|n|0)'))"
)
#: Among the tables named by ``:tables``.
_OURS = "c.oid IN (SELECT to_regclass(quote_ident(t)) FROM unnest(CAST(:tables AS text[])) t)"
_NOT_AUTOVACUUMED = text(
    f"SELECT c.relname FROM pg_class c WHERE {_OURS} AND {_AUTOVACUUM_OFF} ORDER BY 1"
)
#: Autovacuum's own rule: dead rows > threshold + scale factor x rows.
_DEAD_PAST_THRESHOLD = text(
    "SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid "
    f"WHERE {_OURS} AND s.n_dead_tup > "
    "current_setting('autovacuum_vacuum_threshold')::float8 "
    "+ current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0) "
    "ORDER BY 1"
)


def _sizes(session: Session, dialect: str, tables: Sequence[str]) -> dict[str, int | None]:
    """Bytes per table with its indexes: PostgreSQL's own count, SQLite's ``dbstat``."""
    if dialect == "postgresql":
        return {
            name: int(session.scalar(text("SELECT pg_total_relation_size(:t)"), {"t": name}) or 0)
            for name in tables
        }
    try:
        found = session.execute(
            text(
                "SELECT coalesce(i.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                "LEFT JOIN sqlite_master i ON i.name = s.name AND i.type = 'index' "
                "GROUP BY 1"
            )
        ).all()
    except SQLAlchemyError:
        return {}  # an SQLite built without dbstat: rows only
    sizes = {str(name): int(size) for name, size in found}
    return {name: sizes.get(name) for name in tables}
