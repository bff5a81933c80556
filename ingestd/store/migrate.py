"""Run the packaged alembic migrations from code; no alembic.ini is needed.

The scripts live in ``ingestd/store/migrations``. To add a revision after changing
``schema.py``, run ``python -m ingestd.store.migrate revision "what changed"``
(it autogenerates against a scratch SQLite database at the current head).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ingestd.errors import StorageError
from ingestd.store.engine import DEFAULT_BUSY_TIMEOUT_MS, Database, open_database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
_SCRIPT = re.compile(r"(\d{4})_\w+\.py")


def packaged_head() -> str | None:
    """The newest revision id among the packaged scripts, read from their file names.

    Revision ids are sequential (``0001``, ``0002``, ...; see ``new_revision``), so
    the newest is the largest; alembic itself is only imported when there is work.
    """
    ids = [
        m.group(1)
        for p in MIGRATIONS.joinpath("versions").iterdir()
        if (m := _SCRIPT.fullmatch(p.name))
    ]
    return max(ids, default=None)


def alembic_config() -> Config:
    """An alembic Config pointing at the packaged migration scripts."""
    from alembic.config import Config

    config = Config()
    # Config values go through ConfigParser interpolation, so escape '%'.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this version of ingestd knows (as alembic reads the scripts)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts packaged"
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with db.errors("reading the schema version"), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(db: Database, revision: str = "head") -> None:
    """Bring an open database to ``revision`` in one transaction."""
    if revision == "head" and _stored_revision(db) == packaged_head():
        return  # the usual start: nothing to do, and no need to load alembic
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    try:
        with db.errors("upgrading the schema"), db.writer.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except CommandError as exc:
        # Typically a database written by a newer ingestd than this one.
        raise StorageError(f"cannot upgrade the schema of {db.target}: {exc}") from exc


def _stored_revision(db: Database) -> str | None:
    """``alembic_version``'s row read with a plain query; None when there is none."""
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None  # no such table yet (or unreadable): alembic decides
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Bring the database at ``url`` to the newest schema (creating it if empty)."""
    db = open_database(url, busy_timeout_ms=busy_timeout_ms)
    try:
        upgrade_database(db)
    finally:
        db.close()


def new_revision(message: str) -> None:
    """Autogenerate a revision script from the difference between head and schema.py."""
    from alembic import command
    from alembic.script import ScriptDirectory

    with tempfile.TemporaryDirectory() as scratch:
        db = open_database(f"sqlite:///{scratch}/scratch.db")
        try:
            if any(MIGRATIONS.joinpath("versions").glob("[0-9]*.py")):
                upgrade_database(db)
            config = alembic_config()
            with db.writer.begin() as connection:
                config.attributes["connection"] = connection
                # Sequential ids (0001, 0002, ...) keep the history readable.
                count = len(list(ScriptDirectory.from_config(config).walk_revisions()))
                rev_id = f"{count + 1:04d}"
                command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        finally:
            db.close()


if __name__ == "__main__":  # pragma: no cover - developer tool
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m ingestd.store.migrate revision "message"')
    new_revision(sys.argv[2])
