"""The kernel's first tables: metadata version, history, custom metadata, API tokens.

Revision ID: k0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from qiao.core.storage.types import RecordId, UtcDateTime

revision = "k0001"
down_revision = None
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "qiao_metadata_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "qiao_metadata_change",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor_id", RecordId(), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("definition", _json, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_table(
        "qiao_custom_entity",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("definition", _json, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "qiao_custom_field",
        sa.Column("entity", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("definition", _json, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "qiao_api_token",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("user_id", RecordId(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_qiao_api_token_user_id", "qiao_api_token", ["user_id"])
    op.create_index("uq_qiao_api_token_hash", "qiao_api_token", ["token_hash"], unique=True)


def downgrade() -> None:
    op.drop_table("qiao_api_token")
    op.drop_table("qiao_custom_field")
    op.drop_table("qiao_custom_entity")
    op.drop_table("qiao_metadata_change")
    op.drop_table("qiao_metadata_version")
