"""Writing events into the outbox, and reading them back as :class:`Event` objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert

from qiao.core.events import wake
from qiao.core.events.model import Event
from qiao.core.ids import new_id
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.values import to_json
from qiao.core.records.context import Source, WriteContext
from qiao.core.redaction import is_redacted_change, redacted_change, redacted_changes
from qiao.core.storage.database import kept_until_commit
from qiao.core.storage.system import event as event_table

#: A write transaction's events waiting for its commit.
_PENDING = "events.outbox_pending"


def changes_json(
    entity: EntityDef, changes: Mapping[str, tuple[Any, Any]], *, erased: bool = False
) -> dict[str, Any]:
    """``{field: [old, new]}`` in the API's JSON form (exact decimals, ISO instants).

    Encrypted fields are redacted (:mod:`qiao.core.redaction`): the outbox is a
    plain table, automation and webhooks copy it, and handlers that need the
    value read the record through the records service. An erasure (``erased``)
    redacts every field: what was erased is not passed on.
    """
    result: dict[str, Any] = {}
    for name, change in redacted_changes(entity, changes).items():
        field = entity.field(name)
        if field is None:
            raise ValueError(f"{entity.name} has no field {name!r} (in an event's changes)")
        if erased or is_redacted_change(change):
            result[name] = redacted_change()
        else:
            result[name] = [to_json(field, change[0]), to_json(field, change[1])]
    return result


def record_change(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record_id: str,
    changes: Mapping[str, tuple[Any, Any]],
) -> str:
    """Write a change's event on the write's own connection; returns the event id.

    In a write transaction the event is stored just before the commit, with the
    transaction's others. Listening workers are woken when the write commits
    (:func:`wake.notify`).
    The event is stamped with the wall clock: it orders the outbox, while every
    decision about time (retries, timers) uses the runtime's clock.
    """
    return record_changes(context, entity, operation, [(record_id, changes)])[0]


def record_changes(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    written: Sequence[tuple[str, Mapping[str, tuple[Any, Any]]]],
) -> list[str]:
    """:func:`record_change` for a batch of ``(record id, changes)``: one statement, in order."""
    erased = context.source is Source.ERASURE
    rows = [
        {
            "id": new_id(),
            "entity": entity.name,
            "record_id": record_id,
            "operation": operation,
            "changes": changes_json(entity, changes, erased=erased),
            "actor_id": context.actor.user_id,
            "actor": context.actor.username,
            "source": str(context.source),
            "request_id": context.request_id,
            "created_at": dt.datetime.now(dt.UTC),
        }
        for record_id, changes in written
    ]
    if rows:
        _store(context.connection, rows)
    return [row["id"] for row in rows]


def _store(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the events, in a write transaction together with its others just before it
    commits: a webhook's batch writes leads, receipts and a notification, one statement
    for the three. A savepoint rolled back drops the events of the writes it undid."""
    pending = kept_until_commit(conn, _PENDING, lambda kept: _insert(conn, kept))
    if pending is None:
        _insert(conn, rows)
    else:
        pending.extend(rows)
    wake.notify(conn)


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(event_table), rows)


def from_row(row: Mapping[str, Any]) -> Event:
    """An :class:`Event` from a ``qiao_event`` row."""
    return Event(
        id=row["id"],
        entity=row["entity"],
        record_id=row["record_id"],
        operation=row["operation"],
        changes=row["changes"],
        actor=row["actor"],
        actor_id=row["actor_id"],
        source=row["source"],
        request_id=row["request_id"],
        created_at=row["created_at"],
        timer=row["timer"],
        payload=row["payload"],
    )
