"""Deadlines stored in the database: schedule, cancel, and fire what is due.

A timer is a row (entity, record, name, due time, payload), written in the
caller's transaction, so it exists exactly when the change that set it does.
Workers fire due timers by turning each into an event of operation ``timer``
and deleting it in one transaction: a timer fires once, and a worker that dies
before committing leaves it in place for the next sweep. Nothing is kept in
memory, so a restart loses none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, func, insert, select

from qiao.core.events import wake
from qiao.core.ids import new_id
from qiao.core.records.context import Source
from qiao.core.redaction import contains_sensitive
from qiao.core.storage.system import event as event_table
from qiao.core.storage.system import timer as timer_table


def schedule(
    conn: Connection,
    entity: str,
    record_id: str,
    name: str,
    due_at: dt.datetime,
    payload: Any = None,
) -> str:
    """Set the timer ``name`` of a record to ``due_at``, replacing one of that name.

    The payload is stored in clear, so a value opened from an encrypted field is
    refused in it (ValueError): the handler reads the record when the timer fires.
    """
    return schedule_many(conn, entity, name, [(record_id, due_at, payload)])[0]


def schedule_many(
    conn: Connection,
    entity: str,
    name: str,
    timers: Sequence[tuple[str, dt.datetime, Any]],
    *,
    created: bool = False,
) -> list[str]:
    """:func:`schedule` for many records' ``(record id, due time, payload)``: the timers
    they replace removed in one statement, the new ones inserted in one.

    ``created`` says the records were created in this transaction, so they have no
    timer to replace and nothing is removed (one statement fewer for a batch of new
    records; a timer that did exist makes the insert fail on its unique key).
    """
    for _, due_at, payload in timers:
        if due_at.tzinfo is None:
            raise ValueError("a timer's due time needs a time zone")
        if contains_sensitive(payload):
            raise ValueError(
                "a timer's payload is stored in clear and may not hold an encrypted field's "
                "value; keep the record id and read the record when the timer fires"
            )
    if not timers:
        return []
    t = timer_table
    if not created:
        ids = [record_id for record_id, _, _ in timers]
        conn.execute(
            delete(t).where(t.c.entity == entity, t.c.record_id.in_(ids), t.c.name == name)
        )
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": new_id(),
            "entity": entity,
            "record_id": record_id,
            "name": name,
            "due_at": due_at,
            "payload": payload,
            "created_at": now,
        }
        for record_id, due_at, payload in timers
    ]
    conn.execute(insert(t), rows)
    wake.notify(conn)  # an idle worker recomputes when to wake
    return [row["id"] for row in rows]


def cancel(conn: Connection, entity: str, record_id: str, name: str) -> bool:
    """Remove the timer ``name`` of a record; returns whether there was one."""
    t = timer_table
    result = conn.execute(
        delete(t).where(t.c.entity == entity, t.c.record_id == record_id, t.c.name == name)
    )
    return bool(result.rowcount)


def pending(conn: Connection, entity: str, record_id: str) -> dict[str, dt.datetime]:
    """The record's timers that have not fired: name -> due time."""
    t = timer_table
    rows = conn.execute(
        select(t.c.name, t.c.due_at).where(t.c.entity == entity, t.c.record_id == record_id)
    )
    return {str(name): due_at for name, due_at in rows}


def due(now: dt.datetime) -> ColumnElement[bool]:
    """Whether some timer is due (for a read, so idle workers take no write lock)."""
    t = timer_table
    return exists(select(t.c.id).where(t.c.due_at <= now))


def next_due(conn: Connection) -> dt.datetime | None:
    """When the earliest timer is due (None without timers)."""
    due: dt.datetime | None = conn.execute(select(func.min(timer_table.c.due_at))).scalar()
    return due


def fire_due(conn: Connection, now: dt.datetime, limit: int) -> int:
    """Turn up to ``limit`` due timers into events; returns how many fired.

    Run in a write transaction. On PostgreSQL the due rows are locked with
    ``SKIP LOCKED``, so concurrent workers fire disjoint timers.
    """
    t = timer_table
    stmt = select(t).where(t.c.due_at <= now).order_by(t.c.due_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for row in rows:
        conn.execute(
            insert(event_table).values(
                id=new_id(),
                entity=row["entity"],
                record_id=row["record_id"],
                operation="timer",
                changes={},
                timer=row["name"],
                payload=row["payload"],
                actor_id=None,
                actor="system",
                source=str(Source.SYSTEM),
                request_id=row["id"].replace("-", ""),
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    if rows:
        conn.execute(delete(t).where(t.c.id.in_([r["id"] for r in rows])))
        wake.notify(conn)
    return len(rows)
