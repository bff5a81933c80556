"""Run the packaged alembic migrations from code; no alembic.ini is needed.

The scripts live in ``ingestd/store/migrations``. To add a revision after changing
``schema.py``, run ``python -m ingestd.store.migrate revision "what changed"``
(it autogenerates against a scratch SQLite database at the current head).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ingestd.errors import StorageError
from ingestd.store.engine import DEFAULT_BUSY_TIMEOUT_MS, Database, open_database

MIGRATIONS = Path(__file__).resolve().with_name("migrations")


def alembic_config() -> Config:
    """An alembic Config pointing at the packaged migration scripts."""
    config = Config()
    # Config values go through ConfigParser interpolation, so escape '%'.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this version of ingestd knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts packaged"
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None for an empty database."""
    with db.errors("reading the schema version"), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(db: Database, revision: str = "head") -> None:
    """Bring an open database to ``revision`` in one transaction."""
    config = alembic_config()
    try:
        with db.errors("upgrading the schema"), db.writer.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except CommandError as exc:
        # Typically a database written by a newer ingestd than this one.
        raise StorageError(f"cannot upgrade the schema of {db.target}: {exc}") from exc


def upgrade(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Bring the database at ``url`` to the newest schema (creating it if empty)."""
    db = open_database(url, busy_timeout_ms=busy_timeout_ms)
    try:
        upgrade_database(db)
    finally:
        db.close()


def new_revision(message: str) -> None:
    """Autogenerate a revision script from the difference between head and schema.py."""
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
