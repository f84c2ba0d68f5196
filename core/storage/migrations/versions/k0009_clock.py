"""The replay clock's offset, shared by a deployment's processes (docs/clock.md).

Revision ID: k0009_clock
Revises: k0008_numbering
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import UtcDateTime

revision = "k0009_clock"
down_revision = "k0008_numbering"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_clock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("offset_us", sa.BigInteger, nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qiao_clock")
