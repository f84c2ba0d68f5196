"""The kernel's own tables, whose shape is fixed by Qiao's versioned migrations.

Entity tables are derived from metadata; these hold the metadata itself (what
admins added at run time, and the history of every change), and credentials.
Their DDL lives in ``qiao.core.storage.migrations``; these Table objects are how
code reads and writes them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from qiao.core.storage.types import RecordId, UtcDateTime

metadata = MetaData()
_json = JSON().with_variant(JSONB(), "postgresql")

metadata_version = Table(
    "qiao_metadata_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

metadata_change = Table(
    "qiao_metadata_change",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_id", RecordId(), nullable=True),
    Column("operation", String(32), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("field", String(64), nullable=True),
    Column("definition", _json, nullable=True),
    Column("note", Text, nullable=True),
)

custom_entity = Table(
    "qiao_custom_entity",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("definition", _json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

custom_field = Table(
    "qiao_custom_field",
    metadata,
    Column("entity", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("definition", _json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

api_token = Table(
    "qiao_api_token",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("user_id", RecordId(), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Index("ix_qiao_api_token_user_id", "user_id"),
    Index("uq_qiao_api_token_hash", "token_hash", unique=True),
)
