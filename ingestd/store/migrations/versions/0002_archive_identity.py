"""Which archive folder holds an entry's file, and which daemon wrote it.

Several daemons may share one database while each writes to its own disk; start-up
reconciliation must only judge the files of its own archive, and ``status`` shows
who archived what.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("archive_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("archived_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("archived_by")
        batch.drop_column("archive_id")
