"""Entries whose article page failed (retried with back-off, given up visibly), and the
text of every revision of an entry (before, only its hash was kept).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("entry_revisions") as batch:
        batch.add_column(sa.Column("text", sa.LargeBinary(), nullable=True))
    op.create_table(
        "page_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("identity_key", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_page_failures_feed_id_feeds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_failures")),
        sa.UniqueConstraint(
            "feed_id", "identity_key", name=op.f("uq_page_failures_feed_id_identity_key")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("page_failures")
    with op.batch_alter_table("entry_revisions") as batch:
        batch.drop_column("text")
