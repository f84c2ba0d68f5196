"""Wrapped data keys and blind-index keys of encrypted fields (docs/encryption.md).

Revision ID: k0005_encryption
Revises: k0004_identity
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import UtcDateTime

revision = "k0005_encryption"
down_revision = "k0004_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_data_key",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("sealed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("limit", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_qiao_data_key_entity", "qiao_data_key", ["entity", "purpose", "state"])


def downgrade() -> None:
    op.drop_index("ix_qiao_data_key_entity", "qiao_data_key")
    op.drop_table("qiao_data_key")
