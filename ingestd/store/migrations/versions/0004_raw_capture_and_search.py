"""Raw capture and search: each entry can name the WARC record it was built from, and
the entries' titles and texts get a search index (SQLite FTS5 with the trigram
tokenizer, PostgreSQL pg_trgm), so a phrase of any script, Chinese included, is found.

The index lives outside the ORM models (FTS5 tables are virtual): ``store/search.py``
owns it. The migration builds it empty; the archive files fill it (``ingestd`` indexes
the entries without a row at start-up and before a search).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("raw_file", sa.Text(), nullable=True))
        batch.add_column(sa.Column("raw_offset", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE TABLE entry_search ("
            " entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,"
            " title TEXT NOT NULL, body TEXT NOT NULL)"
        )
        # The extension lives in one schema of the database, maybe not on our path.
        found = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = %s"
        where = op.get_bind().exec_driver_sql(found, ("pg_trgm",)).scalar_one()
        op.execute(
            "CREATE INDEX ix_entry_search_trgm ON entry_search "
            f"USING gin ((title || ' ' || body) {where}.gin_trgm_ops)"
        )
    else:
        # No trigger on entries: a later batch migration that copies the table would
        # drop it silently. ``Store.delete_entry`` removes an entry's index row.
        op.execute(
            "CREATE VIRTUAL TABLE entry_search USING fts5(title, body, tokenize = 'trigram')"
        )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TABLE IF EXISTS entry_search")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("raw_offset")
        batch.drop_column("raw_file")
