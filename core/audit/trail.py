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

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, not_, or_, select, true

from qiao.core.audit.chain import Entry
from qiao.core.masking import apply_mask
from qiao.core.metadata.model import FieldDef, FieldType, Label
from qiao.core.permissions.access import Access
from qiao.core.permissions.rights import FieldAccess
from qiao.core.query import Direction, Ordering, SortKey, Window, encode_cursor, page_size
from qiao.core.redaction import redacted_change
from qiao.core.storage import system

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
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None


@dataclass(frozen=True)
class TrailFilter:
    """Which entries of a trail to show; every condition given must hold."""

    #: Stored operation names (``create``, ``login.success``...); None for any.
    operations: Sequence[str] | None = None
    #: Or any operation other than these (what the API calls OTHER).
    other_than: Sequence[str] | None = None
    sources: Sequence[str] | None = None
    #: Or any source other than these.
    other_sources_than: Sequence[str] | None = None
    actor_id: str | None = None
    #: At or after this moment.
    since: dt.datetime | None = None
    #: Before this moment.
    until: dt.datetime | None = None

    def condition(self) -> ColumnElement[bool]:
        table = system.audit_entry
        parts = [
            _one_of(table.c.operation, self.operations, self.other_than),
            _one_of(table.c.source, self.sources, self.other_sources_than),
        ]
        if self.actor_id is not None:
            parts.append(table.c.actor_id == self.actor_id)
        if self.since is not None:
            parts.append(table.c.at >= self.since)
        if self.until is not None:
            parts.append(table.c.at < self.until)
        return and_(true(), *parts)


def _one_of(
    column: Any, values: Sequence[str] | None, other_than: Sequence[str] | None
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` or none of ``other_than``; true if neither is given."""
    if values is None and other_than is None:
        return true()
    alternatives = []
    if values is not None:
        alternatives.append(column.in_(list(values)))
    if other_than is not None:
        alternatives.append(column.not_in(list(other_than)))
    return or_(false(), *alternatives)


#: The trail's order: the log's sequence, which follows the time entries were appended.
_SEQUENCE = FieldDef.model_construct(
    name="sequence", type=FieldType.INTEGER, label=Label(en="sequence"), required=True
)


def ordering(newest_first: bool = False) -> Ordering:
    """The trail's order as the paginator takes it; its cursors hold only the sequence."""
    direction = Direction.DESC if newest_first else Direction.ASC
    return Ordering("audit_entry", (SortKey("sequence", _SEQUENCE, direction),))


def read_trail(
    conn: Connection,
    access: Access,
    entity: str,
    record_id: str,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    newest_first: bool = False,
    where: TrailFilter | None = None,
    with_total: bool = False,
) -> TrailPage:
    """A page of the record's entries ``access`` may see, with Relay cursors as the
    generated connections have them (:class:`qiao.core.query.Window`).

    The caller must have passed :func:`can_read_trail`; this applies the field
    rules and keeps security events from those who may not read them.
    """
    window = Window.over(
        ordering(newest_first), page_size(first, last), after=after, last=last, before=before
    )
    table = system.audit_entry
    condition = and_(
        table.c.entity == entity,
        table.c.record_id == record_id,
        (where or TrailFilter()).condition(),
    )
    hidden = _hidden_security_events(access, entity, record_id)
    if hidden is not None:
        condition = and_(condition, not_(hidden))
    rows = conn.execute(
        select(table)
        .where(condition, window.beyond(table))
        .order_by(*window.walk.clauses(table))
        .limit(window.size + 1)
    ).all()
    overflow = len(rows) > window.size
    rows = rows[: window.size]
    if window.backwards:
        rows.reverse()
    entries = [Entry.of(row._mapping) for row in rows]
    behind = window.cursor is not None and (
        conn.execute(
            select(table.c.sequence).where(condition, window.behind(table)).limit(1)
        ).first()
        is not None
    )
    has_next, has_previous = window.page_info(overflow=overflow, behind=behind)
    total = None
    if with_total:
        total = conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
    return TrailPage(
        entries=[TrailEntry(e, visible_changes(access, e)) for e in entries],
        cursors=[encode_cursor(window.ordering, {"sequence": e.sequence}) for e in entries],
        has_next_page=has_next,
        has_previous_page=has_previous,
        total_count=total,
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
