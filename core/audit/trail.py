"""One record's history from the audit log, a page at a time, under the caller's rules.

Reading a trail must not show more than reading the record does: a field the
caller may not read appears in each entry's ``changes`` only as
``{"redacted": true}`` (the fact that it changed, not its values), exactly as
the log itself keeps encrypted fields. Security events (sign-ins and their
failures, token, password and key operations) are readable only by those who
read the whole audit log (administrators and roles with ``audit``, such as the
security auditor) and by the user they are about.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, not_, or_, select

from qiao.core.audit.chain import Entry
from qiao.core.errors import BadUserInput
from qiao.core.masking import apply_mask
from qiao.core.permissions.access import Access
from qiao.core.permissions.rights import FieldAccess
from qiao.core.redaction import redacted_change
from qiao.core.storage import system

DEFAULT_PAGE = 50
MAX_PAGE = 500
_CURSOR_PREFIX = "audit:"
#: Operations whose entries are security events (see :func:`is_security_event`).
SECURITY_PREFIXES = ("login.", "token.", "password.", "key.")


def is_security_event(operation: str) -> bool:
    """Sign-ins, token, password and key operations: readable by the auditor and the user."""
    return operation.startswith(SECURITY_PREFIXES)


def can_read_trail(access: Access, conn: Connection, entity: str, record_id: str) -> bool:
    """Whether a caller may read the history of one record.

    Administrators and roles with ``audit`` (the security auditor) read every
    trail; anyone else reads the trail of a record they may read now. The
    history of a deleted record is for the first group only.
    """
    if access.reads_audit:
        return True
    access.require(entity, "read")
    table = access.catalog.table(entity)
    readable = access.row_filter(entity, table, "read")
    stmt = select(table.c.id).where(table.c.id == record_id)
    if readable is not None:
        stmt = stmt.where(readable)
    return conn.execute(stmt).first() is not None


@dataclass(frozen=True)
class TrailEntry:
    """An entry as the caller may see it: ``changes`` parsed, hidden fields redacted."""

    entry: Entry
    changes: dict[str, Any]


@dataclass(frozen=True)
class TrailPage:
    entries: list[TrailEntry]
    has_next_page: bool


def read_trail(
    conn: Connection,
    access: Access,
    entity: str,
    record_id: str,
    *,
    first: int | None = None,
    after: str | None = None,
) -> TrailPage:
    """The record's entries ``access`` may see, oldest first, after the cursor ``after``.

    The caller must have passed :func:`can_read_trail`; this applies the field
    rules and keeps security events from those who may not read them.
    """
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    table = system.audit_entry
    stmt = select(table).where(table.c.entity == entity, table.c.record_id == record_id)
    hidden = _hidden_security_events(access, entity, record_id)
    if hidden is not None:
        stmt = stmt.where(not_(hidden))
    if after is not None:
        stmt = stmt.where(table.c.sequence > decode_cursor(after))
    rows = conn.execute(stmt.order_by(table.c.sequence).limit(size + 1)).all()
    entries = [Entry.of(row._mapping) for row in rows[:size]]
    return TrailPage(
        entries=[TrailEntry(e, visible_changes(access, e)) for e in entries],
        has_next_page=len(rows) > size,
    )


def visible_changes(access: Access, entry: Entry) -> dict[str, Any]:
    """The entry's changes: fields the caller may not read redacted, masked ones masked."""
    changes: dict[str, Any] = json.loads(entry.changes)
    if access.is_unrestricted or entry.entity is None or is_security_event(entry.operation):
        return changes
    shown: dict[str, Any] = {}
    for name, change in changes.items():
        mask = access.masked(entry.entity, name)
        if access.field_access(entry.entity, name) is FieldAccess.NONE:
            shown[name] = redacted_change()
        elif mask is not None and isinstance(change, dict) and "old" in change:
            shown[name] = {k: apply_mask(mask, v) for k, v in change.items()}
        else:
            shown[name] = change
    return shown


def _hidden_security_events(
    access: Access, entity: str, record_id: str
) -> ColumnElement[bool] | None:
    """The condition of entries this caller may not see; None when they see them all."""
    if access.reads_audit:
        return None
    subject = access.subject
    if subject is not None and entity == "user" and record_id == subject.user_id:
        return None
    operation = system.audit_entry.c.operation
    return or_(*[operation.startswith(prefix, autoescape=True) for prefix in SECURITY_PREFIXES])


def encode_cursor(entry: Entry) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{entry.sequence}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text.startswith(_CURSOR_PREFIX):
            return int(text.removeprefix(_CURSOR_PREFIX))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadUserInput(f"{cursor!r} is not an audit trail cursor", field="after")
