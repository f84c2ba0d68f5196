"""The delivery queue: fan events out, claim deliveries under a lease, record outcomes.

Every step is one short transaction, and every claim is safe with several
workers: on PostgreSQL rows are taken with ``FOR UPDATE SKIP LOCKED``, so
concurrent workers take disjoint rows without waiting; on SQLite the write
transaction is ``BEGIN IMMEDIATE``, so claims queue on the single writer. A
claim sets a lease (``locked_by``, ``locked_until``); a delivery whose worker
died is claimed again once its lease has passed, and the attempt that was cut
short is recorded as ``interrupted``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, func, insert, or_, select, update

from qiao.core.events import wake
from qiao.core.events.model import Event, EventHandler
from qiao.core.events.outbox import from_row
from qiao.core.events.webhooks import active_endpoints, handler_name
from qiao.core.ids import new_id
from qiao.core.storage.system import delivery as delivery_table
from qiao.core.storage.system import delivery_attempt as attempt_table
from qiao.core.storage.system import event as event_table

PENDING = "pending"
DONE = "done"
DEAD = "dead"
STATUSES = (PENDING, DONE, DEAD)
INTERRUPTED = "the worker stopped before recording an outcome; its lease expired"


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with its event and attempt row."""

    id: str
    handler: str
    attempt: int
    attempt_id: str
    retry_base: int
    event: Event


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended. ``retry_at`` None with ``ok`` False means: give up."""

    claimed: Claimed
    ok: bool
    error: str | None = None
    retry_at: dt.datetime | None = None


def _skip_locked(conn: Connection, stmt: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def new_events_waiting() -> ColumnElement[bool]:
    """Whether some event awaits fan-out (for a read, so idle workers take no write lock)."""
    e = event_table
    return exists(select(e.c.id).where(e.c.dispatched_at.is_(None)))


def deliveries_due(now: dt.datetime) -> ColumnElement[bool]:
    """Whether some delivery could be claimed now."""
    return exists(_claimable(now))


def next_due(conn: Connection) -> dt.datetime | None:
    """When a waiting delivery next becomes claimable: due, or its lease run out (None if none)."""
    d = delivery_table
    free = select(func.min(d.c.due_at)).where(d.c.status == PENDING, d.c.locked_until.is_(None))
    leased = select(func.min(d.c.locked_until)).where(d.c.status == PENDING)
    both = conn.execute(select(free.scalar_subquery(), leased.scalar_subquery())).one()
    found = [t for t in both if t is not None]
    return min(found) if found else None


def _claimable(now: dt.datetime) -> Any:
    d = delivery_table
    return select(d.c.id).where(
        d.c.status == PENDING,
        d.c.due_at <= now,
        or_(d.c.locked_until.is_(None), d.c.locked_until < now),
    )


def dispatch(
    conn: Connection, handlers: Sequence[EventHandler], now: dt.datetime, limit: int
) -> int:
    """Fan up to ``limit`` new events out into deliveries; returns how many events.

    A handler whose ``when`` raises gets its delivery parked as dead with the
    error, so one faulty predicate neither blocks the outbox nor goes unseen.
    """
    e = event_table
    stmt = select(e).where(e.c.dispatched_at.is_(None)).order_by(e.c.id).limit(limit)
    rows = [dict(r._mapping) for r in conn.execute(_skip_locked(conn, stmt))]
    if not rows:
        return 0
    endpoints = active_endpoints(conn)
    deliveries: list[dict[str, Any]] = []
    for row in rows:
        event = from_row(row)
        for handler in handlers:
            try:
                if handler.wants(event):
                    deliveries.append(_new_delivery(event.id, handler.name, now))
            except Exception as exc:
                dead = _new_delivery(event.id, handler.name, now)
                error = f"the handler's filter failed: {exc.__class__.__name__}: {exc}"
                deliveries.append({**dead, "status": DEAD, "finished_at": now, "last_error": error})
        for endpoint in endpoints:
            if endpoint["entity"] in (None, event.entity):
                deliveries.append(_new_delivery(event.id, handler_name(endpoint["id"]), now))
    if deliveries:
        conn.execute(insert(delivery_table), deliveries)
    conn.execute(update(e).where(e.c.id.in_([r["id"] for r in rows])).values(dispatched_at=now))
    return len(rows)


def _new_delivery(event_id: str, handler: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "event_id": event_id,
        "handler": handler,
        "status": PENDING,
        "attempts": 0,
        "retry_base": 0,
        "due_at": now,
        "locked_by": None,
        "locked_until": None,
        "last_error": None,
        "created_at": now,
        "finished_at": None,
    }


def claim(
    conn: Connection, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``worker`` and open an attempt for each."""
    d = delivery_table
    stmt = _claimable(now).add_columns(d.c.locked_by).order_by(d.c.due_at).limit(limit)
    found = conn.execute(_skip_locked(conn, stmt)).all()
    ids = [r[0] for r in found]
    if not ids:
        return []
    a = attempt_table
    expired = [r[0] for r in found if r[1] is not None]  # a worker's lease ran out
    if expired:
        conn.execute(
            update(a)
            .where(a.c.delivery_id.in_(expired), a.c.finished_at.is_(None))
            .values(finished_at=now, outcome="interrupted", error=INTERRUPTED)
        )
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(attempts=d.c.attempts + 1, locked_by=worker, locked_until=now + lease)
    )
    rows = conn.execute(
        select(d.c.id.label("delivery_id"), d.c.handler, d.c.attempts, d.c.retry_base, event_table)
        .join(event_table, event_table.c.id == d.c.event_id)
        .where(d.c.id.in_(ids))
        .order_by(d.c.due_at, d.c.id)
    )
    claimed = []
    attempts = []
    for row in rows:
        m = row._mapping
        attempt_id = new_id()
        attempts.append(
            {
                "id": attempt_id,
                "delivery_id": m["delivery_id"],
                "number": m["attempts"],
                "worker": worker,
                "started_at": now,
            }
        )
        claimed.append(
            Claimed(
                m["delivery_id"],
                m["handler"],
                m["attempts"],
                attempt_id,
                m["retry_base"],
                from_row(m),
            )
        )
    conn.execute(insert(a), attempts)
    return claimed


def complete(conn: Connection, worker: str, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    """Record finished attempts and move their deliveries on (done, retry or dead).

    Successes are written in two statements whatever their number. A failure
    is recorded against the delivery only while this worker still holds it; a
    success is recorded whoever holds it, since the work is done.
    """
    d = delivery_table
    a = attempt_table
    succeeded = [o.claimed for o in outcomes if o.ok]
    if succeeded:
        conn.execute(
            update(a)
            .where(a.c.id.in_([c.attempt_id for c in succeeded]))
            .values(finished_at=now, outcome="ok")
        )
        conn.execute(
            update(d)
            .where(d.c.id.in_([c.id for c in succeeded]), d.c.status == PENDING)
            .values(
                status=DONE, finished_at=now, last_error=None, locked_by=None, locked_until=None
            )
        )
    for outcome in outcomes:
        if outcome.ok:
            continue
        c = outcome.claimed
        conn.execute(
            update(a)
            .where(a.c.id == c.attempt_id)
            .values(finished_at=now, outcome="error", error=outcome.error)
        )
        values: dict[str, Any] = (
            {"status": DEAD, "finished_at": now}
            if outcome.retry_at is None
            else {"due_at": outcome.retry_at}
        )
        conn.execute(
            update(d)
            .where(d.c.id == c.id, d.c.status == PENDING, d.c.locked_by == worker)
            .values(locked_by=None, locked_until=None, last_error=outcome.error, **values)
        )


def release(conn: Connection, worker: str, unrun: Sequence[Claimed]) -> None:
    """Give back claimed deliveries this worker did not start, as if never claimed."""
    if not unrun:
        return
    d = delivery_table
    conn.execute(
        update(d)
        .where(d.c.id.in_([c.id for c in unrun]), d.c.locked_by == worker)
        .values(attempts=d.c.attempts - 1, locked_by=None, locked_until=None)
    )
    conn.execute(delete(attempt_table).where(attempt_table.c.id.in_([c.attempt_id for c in unrun])))


# -- Inspection and replay (qiao jobs) ----------------------------------------------------


def list_deliveries(
    conn: Connection, statuses: Sequence[str] = STATUSES, limit: int = 50
) -> list[dict[str, Any]]:
    """Deliveries, newest first, with their event's entity, record and operation."""
    d = delivery_table
    e = event_table
    stmt = (
        select(d, e.c.entity, e.c.record_id, e.c.operation, e.c.timer)
        .join(e, e.c.id == d.c.event_id)
        .order_by(d.c.created_at.desc(), d.c.id.desc())
        .limit(limit)
    )
    stmt = stmt.where(d.c.status.in_(statuses))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def get_delivery(conn: Connection, delivery_id: str) -> dict[str, Any] | None:
    """A delivery with ``event`` (its row) and ``history`` (every attempt, in order)."""
    d = delivery_table
    row = conn.execute(select(d).where(d.c.id == delivery_id)).first()
    if row is None:
        return None
    result = dict(row._mapping)
    e = event_table
    result["event"] = dict(conn.execute(select(e).where(e.c.id == row.event_id)).one()._mapping)
    a = attempt_table
    attempts = conn.execute(
        select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.started_at, a.c.number)
    )
    result["history"] = [dict(r._mapping) for r in attempts]
    return result


def retry(conn: Connection, ids: Sequence[str] | None, now: dt.datetime) -> int:
    """Make dead (or waiting) deliveries due now; ``ids`` None means every dead one.

    A dead delivery gets a fresh budget of attempts; its past attempts stay.
    Returns how many deliveries were changed.
    """
    d = delivery_table
    changed = 0
    dead = [d.c.status == DEAD]
    if ids is not None:
        dead.append(d.c.id.in_(ids))
        hastened = conn.execute(
            update(d).where(d.c.status == PENDING, d.c.id.in_(ids)).values(due_at=now)
        )
        changed += int(hastened.rowcount)
    revived = conn.execute(
        update(d)
        .where(*dead)
        .values(
            status=PENDING,
            due_at=now,
            retry_base=d.c.attempts,
            finished_at=None,
            locked_by=None,
            locked_until=None,
        )
    )
    changed += int(revived.rowcount)
    if changed:
        wake.notify(conn)
    return changed


def counts(conn: Connection) -> dict[str, int]:
    """How many deliveries are in each status."""
    d = delivery_table
    rows = conn.execute(select(d.c.status, func.count()).group_by(d.c.status))
    return {status: int(n) for status, n in rows}
