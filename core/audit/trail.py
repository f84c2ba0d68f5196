"""One record's history from the audit log, a page at a time, for those allowed to read it."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy import Connection, select

from qiao.core.audit.chain import Entry
from qiao.core.errors import BadUserInput
from qiao.core.permissions.access import Access
from qiao.core.storage import system

DEFAULT_PAGE = 50
MAX_PAGE = 500
_CURSOR_PREFIX = "audit:"


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
class TrailPage:
    entries: list[Entry]
    has_next_page: bool


def read_trail(
    conn: Connection,
    entity: str,
    record_id: str,
    *,
    first: int | None = None,
    after: str | None = None,
) -> TrailPage:
    """The record's entries, oldest first, after the cursor ``after``."""
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    table = system.audit_entry
    stmt = select(table).where(table.c.entity == entity, table.c.record_id == record_id)
    if after is not None:
        stmt = stmt.where(table.c.sequence > decode_cursor(after))
    rows = conn.execute(stmt.order_by(table.c.sequence).limit(size + 1)).all()
    entries = [Entry.of(row._mapping) for row in rows[:size]]
    return TrailPage(entries=entries, has_next_page=len(rows) > size)


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
