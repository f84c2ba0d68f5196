"""Offline edits' outcomes, kept so a retried push answers the same (docs/sync.md).

Revision ID: k0011_sync_outcomes
Revises: k0010_change_feed
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import RecordId, UtcDateTime

revision = "k0011_sync_outcomes"
down_revision = "k0010_change_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_sync_outcome",
        sa.Column("user_id", RecordId(), primary_key=True),
        sa.Column("client_mutation_id", sa.String(64), primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_qiao_sync_outcome_created", "qiao_sync_outcome", ["created_at"])


def downgrade() -> None:
    op.drop_table("qiao_sync_outcome")
