"""Alembic environment: migrate the connection ``ingestd.store.migrate`` hands over.

Run through ``ingestd.store.migrate`` (no alembic.ini): it puts an open connection in
``config.attributes["connection"]``. Offline (``--sql``) runs use the
``sqlalchemy.url`` option instead.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import text

from ingestd.store.schema import Base, UTCDateTime, is_modelled

# Any constant works; it only has to be the same for every ingestd process.
_PG_MIGRATION_LOCK = 0x1E57D


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Render UTCDateTime as a plain DateTime so revisions never import ingestd code."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_online() -> None:
    """Migrate the connection passed in by ``ingestd.store.migrate``."""
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=is_modelled,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two daemons starting together must not both create the tables.
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        context.run_migrations()


def run_offline() -> None:
    """Emit the migration SQL for ``sqlalchemy.url`` without connecting."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
