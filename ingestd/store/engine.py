"""Engine factory, transactions and the store's one exception boundary.

Everything SQLAlchemy or the database driver raises inside ``Database.errors`` (and so
inside ``read``/``write``) leaves as ``ingestd.errors.StorageError`` with a message a
person can act on; the original exception is kept as ``__cause__``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.orm import Session

from ingestd.errors import StorageError

DEFAULT_BUSY_TIMEOUT_MS = 5000
#: Seconds psycopg waits for a PostgreSQL server before giving up.
PG_CONNECT_TIMEOUT = 10
# Execution option marking a connection that will write (SQLite: BEGIN IMMEDIATE).
_WRITE = "ingestd_write"


@dataclass(frozen=True)
class Database:
    """An engine plus what error messages need to name: the file or server."""

    engine: Engine
    target: str
    busy_timeout_ms: int

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def errors(self, doing: str = "") -> AbstractContextManager[None]:
        """Turn any SQLAlchemy/driver exception raised inside into a StorageError."""
        return storage_errors(self.target, self.busy_timeout_ms, doing)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short transaction for reading (a plain BEGIN on SQLite)."""
        session = Session(self.engine, expire_on_commit=False)
        with self.errors(), session, session.begin():
            yield session

    @contextmanager
    def read_rows(self) -> Iterator[Connection]:
        """``read`` without a Session, for Core queries on hot paths."""
        with self.errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A short write transaction; on SQLite it takes the write lock up front.

        Taking the lock at BEGIN means the busy timeout applies; a deferred transaction
        that reads first and writes later can fail at once with "database is locked".
        """
        session = Session(self.writer, expire_on_commit=False)
        with self.errors(), session, session.begin():
            yield session

    @contextmanager
    def write_rows(self, *, bookkeeping: bool = False) -> Iterator[Connection]:
        """``write`` without a Session, for Core statements on hot paths.

        ``bookkeeping``: the transaction holds only what a poll leaves behind it (its
        lease, its outcome, the feed's next check), none of the archive. On PostgreSQL it
        commits without waiting for its WAL to reach the disk (``synchronous_commit =
        off``): a server crash may forget the last fraction of a second of them, and those
        feeds are polled again, as SQLite's ``synchronous=NORMAL`` may after a power cut.
        Entries are always committed durably (and flush these with them). Several daemons
        otherwise wait on each other's disk flushes.
        """
        with self.errors(), self.writer.connect() as connection, connection.begin():
            if bookkeeping and self.dialect == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield connection

    @cached_property
    def writer(self) -> Engine:
        """The engine whose connections begin write transactions (also for migrations)."""
        return self.engine.execution_options(**{_WRITE: True})

    def close(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()


@contextmanager
def storage_errors(target: str, busy_timeout_ms: int, doing: str = "") -> Iterator[None]:
    """Re-raise SQLAlchemy/driver exceptions as StorageError naming ``target``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(describe(exc, target, busy_timeout_ms, doing)) from exc


def open_database(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Database:
    """Create the engine for ``sqlite:///...`` or ``postgresql+psycopg://...`` URLs."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise StorageError(f"not a database URL: {url!r} ({exc})") from exc
    backend = parsed.get_backend_name()
    target = _target(parsed)
    with storage_errors(target, busy_timeout_ms, "opening the database"):
        if backend == "sqlite":
            engine = _sqlite_engine(parsed, busy_timeout_ms)
        elif backend == "postgresql":
            engine = _postgresql_engine(parsed)
        else:
            raise StorageError(
                f"unsupported database {target}: use sqlite:///PATH or postgresql+psycopg://..."
            )
    return Database(engine=engine, target=target, busy_timeout_ms=busy_timeout_ms)


def _target(url: URL) -> str:
    """The file path (absolute) or the URL without its password, for messages."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return "in-memory SQLite database"
        return os.path.abspath(url.database)
    return url.render_as_string(hide_password=True)


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    _make_folder(url)
    # The driver's own timeout is the busy timeout too; keep both the same.
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below issues BEGIN itself,
        # which pysqlite would otherwise do late and always DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Takes effect only in a new, empty database (before the first table): its
            # freed pages can then be given back bit by bit (``Store.reclaim_space``).
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut
            # may lose the last commits but never corrupts, and start-up repair drops
            # nothing it cannot redo (files are written before their rows).
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _make_folder(url: URL) -> None:
    """Create the folder of a SQLite database file, as the archive folder is created."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(url.database))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder {folder} of the SQLite database: {exc.strerror or exc}"
        ) from None


def _postgresql_engine(url: URL) -> Engine:
    # psycopg 3 is the supported driver; a bare postgresql:// would mean psycopg2.
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise StorageError(
            f"unsupported PostgreSQL driver {url.drivername!r}: use postgresql+psycopg://"
        )
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def describe(exc: SQLAlchemyError, target: str, busy_timeout_ms: int, doing: str = "") -> str:
    """A one-line message saying what failed and where, without SQLAlchemy's boilerplate."""
    prefix = f"{doing}: " if doing else ""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        reason = _first_line(str(exc.orig))
        if "database is locked" in reason or "database table is locked" in reason:
            waited = busy_timeout_ms / 1000
            return f"{prefix}database is locked (waited {waited:.1f} s): {target}"
        if "unable to open database file" in reason:
            return (
                f"{prefix}cannot open the SQLite database {target} "
                "(does its folder exist and is it writable?)"
            )
        if isinstance(exc, IntegrityError):
            return f"{prefix}constraint violated ({reason}): {target}"
        return f"{prefix}{reason}: {target}"
    if isinstance(exc, StatementError) and exc.orig is not None:
        # Raised before reaching the database, e.g. a naive datetime in a bind value.
        return f"{prefix}bad value for the database ({_first_line(str(exc.orig))}): {target}"
    return f"{prefix}{_first_line(str(exc))}: {target}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown database error"
