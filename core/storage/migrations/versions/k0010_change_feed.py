"""The change feed reads the audit log by entity in sequence order (docs/sync.md).

Revision ID: k0010_change_feed
Revises: k0009_clock
"""

from alembic import op

revision = "k0010_change_feed"
down_revision = "k0009_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_qiao_audit_entry_feed", "qiao_audit_entry", ["entity", "sequence"])


def downgrade() -> None:
    op.drop_index("ix_qiao_audit_entry_feed", table_name="qiao_audit_entry")
