"""Passwords with lockout state, and scopes on API tokens.

Revision ID: k0004_identity
Revises: k0003_audit
"""

import sqlalchemy as sa
from alembic import op

from qiao.core.storage.types import RecordId, UtcDateTime

revision = "k0004_identity"
down_revision = "k0003_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_credential",
        sa.Column("user_id", RecordId(), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
    )
    with op.batch_alter_table("qiao_api_token") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=False, server_default="write"))


def downgrade() -> None:
    with op.batch_alter_table("qiao_api_token") as batch:
        batch.drop_column("scope")
    op.drop_table("qiao_credential")
