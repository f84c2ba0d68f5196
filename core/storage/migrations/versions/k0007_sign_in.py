"""Failed sign-ins per client address and user name, for throttling and lockout.

Revision ID: k0007_sign_in
Revises: k0006_packages
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import UtcDateTime

revision = "k0007_sign_in"
down_revision = "k0006_packages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_sign_in_failure",
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_qiao_sign_in_failure_username", "qiao_sign_in_failure", ["username"])


def downgrade() -> None:
    op.drop_index("ix_qiao_sign_in_failure_username", "qiao_sign_in_failure")
    op.drop_table("qiao_sign_in_failure")
