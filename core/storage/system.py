"""The kernel's own tables, whose shape is fixed by Qiao's versioned migrations.

Entity tables are derived from metadata; these hold the metadata itself (what
admins added at run time, and the history of every change), and credentials.
Their DDL lives in ``qiao.core.storage.migrations``; these Table objects are how
code reads and writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
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
    #: "write" (the token may change data) or "read" (queries only).
    Column("scope", String(16), nullable=False, server_default="write"),
    Index("ix_qiao_api_token_user_id", "user_id"),
    Index("uq_qiao_api_token_hash", "token_hash", unique=True),
)

# -- Events: the outbox, deliveries and their attempts, timers, webhook endpoints --------
# (docs/events.md; revision k0002_events)

event = Table(
    "qiao_event",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("entity", String(64), nullable=False),
    Column("record_id", RecordId(), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("changes", _json, nullable=False),
    Column("timer", String(100), nullable=True),
    Column("payload", _json, nullable=True),
    Column("actor_id", RecordId(), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("source", String(32), nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("dispatched_at", UtcDateTime(), nullable=True),
    Index("ix_qiao_event_dispatched_at", "dispatched_at"),
)

delivery = Table(
    "qiao_delivery",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("event_id", RecordId(), ForeignKey("qiao_event.id"), nullable=False),
    Column("handler", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("retry_base", Integer, nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("locked_by", String(64), nullable=True),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("uq_qiao_delivery_event_handler", "event_id", "handler", unique=True),
    Index("ix_qiao_delivery_status_due_at", "status", "due_at"),
)

delivery_attempt = Table(
    "qiao_delivery_attempt",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("delivery_id", RecordId(), ForeignKey("qiao_delivery.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("worker", String(64), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_qiao_delivery_attempt_delivery_id", "delivery_id"),
)

timer = Table(
    "qiao_timer",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("entity", String(64), nullable=False),
    Column("record_id", RecordId(), nullable=False),
    Column("name", String(100), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("payload", _json, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("uq_qiao_timer_record_name", "entity", "record_id", "name", unique=True),
    Index("ix_qiao_timer_due_at", "due_at"),
)

webhook_endpoint = Table(
    "qiao_webhook_endpoint",
    metadata,
    Column("id", RecordId(), primary_key=True),
    Column("url", Text, nullable=False),
    Column("entity", String(64), nullable=True),
    Column("secret", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# -- Audit: the keyed hash chain, its head, its wrapped key and its checkpoints ----------
# (docs/audit.md; revision k0003_audit)

audit_key = Table(
    "qiao_audit_key",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kek_id", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

audit_head = Table(
    "qiao_audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("mac", String(64), nullable=False),
    Column("key_id", String(64), nullable=True),
)

audit_entry = Table(
    "qiao_audit_entry",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("actor_id", RecordId(), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("source", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("entity", String(64), nullable=True),
    Column("record_id", String(64), nullable=True),
    Column("changes", Text, nullable=False),
    Column("mac", String(64), nullable=False),
    Index("ix_qiao_audit_entry_record", "entity", "record_id", "sequence"),
    # The change feed's per-entity streams (qiao.core.records.changes; revision k0010).
    Index("ix_qiao_audit_entry_feed", "entity", "sequence"),
)

audit_checkpoint = Table(
    "qiao_audit_checkpoint",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("mac", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(64), nullable=False),
)

credential = Table(
    "qiao_credential",
    metadata,
    Column("user_id", RecordId(), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("changed_at", UtcDateTime(), nullable=False),
)

#: Failed sign-ins per client address and user name typed (known or not), within a window;
#: a pair locked out locks only that address out of that name (revision k0007_sign_in).
sign_in_failure = Table(
    "qiao_sign_in_failure",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("username", String(255), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
    Index("ix_qiao_sign_in_failure_username", "username"),
)

#: Data keys and blind-index keys of encrypted fields, wrapped by the deployment's KEK
#: (qiao.core.encryption). ``sealed`` counts the values a data key may have sealed.
data_key = Table(
    "qiao_data_key",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("entity", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("kek_id", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("sealed", BigInteger, nullable=False, server_default="0"),
    Column("limit", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_qiao_data_key_entity", "entity", "purpose", "state"),
)

#: The records manifests declare (roles, rules, pipelines ...), with what was shipped and
#: what was written, to tell a template's changes from an administrator's on upgrade.
declared = Table(
    "qiao_declared",
    metadata,
    Column("entity", String(64), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("plugin", String(64), nullable=False),
    Column("shipped_digest", String(64), nullable=False),
    Column("written_digest", String(64), nullable=False),
    Column("keys", _json, nullable=False),
)

#: The version of each plugin and template whose content the database holds.
package = Table(
    "qiao_package",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

#: Counters of declared number patterns, per sequence and period (docs/numbering.md).
number_sequence = Table(
    "qiao_number_sequence",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: The replay clock's offset from real time (docs/clock.md); one row, when it was ever set.
clock_offset = Table(
    "qiao_clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("offset_us", BigInteger, nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
)

#: What each offline edit pushed through syncPush answered, by caller and client mutation id,
#: so a retried batch answers the same without applying twice (docs/sync.md; revision k0011).
sync_outcome = Table(
    "qiao_sync_outcome",
    metadata,
    Column("user_id", RecordId(), primary_key=True),
    Column("client_mutation_id", String(64), primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_qiao_sync_outcome_created", "created_at"),
)
