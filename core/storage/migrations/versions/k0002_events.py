"""Durable events: the outbox, deliveries and their attempts, timers, webhook endpoints.

Revision ID: k0002_events
Revises: k0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from qiao.core.storage.types import RecordId, UtcDateTime

revision = "k0002_events"
down_revision = "k0001"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "qiao_event",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", RecordId(), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("changes", _json, nullable=False),
        sa.Column("timer", sa.String(100), nullable=True),
        sa.Column("payload", _json, nullable=True),
        sa.Column("actor_id", RecordId(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("dispatched_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_qiao_event_dispatched_at", "qiao_event", ["dispatched_at"])
    op.create_table(
        "qiao_delivery",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("event_id", RecordId(), sa.ForeignKey("qiao_event.id"), nullable=False),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_base", sa.Integer, nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(64), nullable=True),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "uq_qiao_delivery_event_handler", "qiao_delivery", ["event_id", "handler"], unique=True
    )
    op.create_index("ix_qiao_delivery_status_due_at", "qiao_delivery", ["status", "due_at"])
    op.create_table(
        "qiao_delivery_attempt",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("delivery_id", RecordId(), sa.ForeignKey("qiao_delivery.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_qiao_delivery_attempt_delivery_id", "qiao_delivery_attempt", ["delivery_id"]
    )
    op.create_table(
        "qiao_timer",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", RecordId(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("payload", _json, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "uq_qiao_timer_record_name", "qiao_timer", ["entity", "record_id", "name"], unique=True
    )
    op.create_index("ix_qiao_timer_due_at", "qiao_timer", ["due_at"])
    op.create_table(
        "qiao_webhook_endpoint",
        sa.Column("id", RecordId(), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("entity", sa.String(64), nullable=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qiao_webhook_endpoint")
    op.drop_table("qiao_timer")
    op.drop_table("qiao_delivery_attempt")
    op.drop_table("qiao_delivery")
    op.drop_table("qiao_event")
