"""Plugin and template versions, and the records their manifests declare (docs/templates.md).

Revision ID: k0006_packages
Revises: k0005_encryption
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from qiao.core.storage.types import UtcDateTime

revision = "k0006_packages"
down_revision = "k0005_encryption"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qiao_declared",
        sa.Column("entity", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("shipped_digest", sa.String(64), nullable=False),
        sa.Column("written_digest", sa.String(64), nullable=False),
        sa.Column("keys", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    op.create_table(
        "qiao_package",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qiao_package")
    op.drop_table("qiao_declared")
