"""Counters of declared number patterns (docs/numbering.md).

Revision ID: k0008_numbering
Revises: k0007_sign_in
"""

import sqlalchemy as sa
from alembic import op

revision = "k0008_numbering"
down_revision = "k0007_sign_in"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_number_sequence",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qiao_number_sequence")
