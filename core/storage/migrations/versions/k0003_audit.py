"""The audit log: entries chained by a keyed HMAC-SM3, its head, wrapped key and checkpoints.

Revision ID: k0003_audit
Revises: k0002_events
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import RecordId, UtcDateTime

revision = "k0003_audit"
down_revision = "k0002_events"
branch_labels = None
depends_on = None

#: The MAC that precedes entry 1: 32 zero bytes, in hex.
GENESIS_MAC = "0" * 64


def upgrade() -> None:
    op.create_table(
        "qiao_audit_key",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    head = op.create_table(
        "qiao_audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
    )
    op.bulk_insert(head, [{"id": 1, "sequence": 0, "mac": GENESIS_MAC, "key_id": None}])
    op.create_table(
        "qiao_audit_entry",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("actor_id", RecordId(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=True),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_qiao_audit_entry_record", "qiao_audit_entry", ["entity", "record_id", "sequence"]
    )
    op.create_table(
        "qiao_audit_checkpoint",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qiao_audit_checkpoint")
    op.drop_table("qiao_audit_entry")
    op.drop_table("qiao_audit_head")
    op.drop_table("qiao_audit_key")
