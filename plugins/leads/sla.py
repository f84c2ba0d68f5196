"""First-touch deadlines: a stored timer per assigned lead, reassignment when it passes.

When a lead gets an owner and is not yet touched, a timer named
``first_touch_sla`` is set at its ``first_touch_due_at`` (in the write's
transaction, so it exists exactly when the assignment does). Moving the
deadline or the owner moves the timer; the first touch, or closing the lead,
cancels it.

A worker fires the timer as a ``timer`` event and runs :func:`handle`: if the
lead is still untouched, open and owned by the same person, it is reassigned
by the routing rules without that person (or to the assigning rule's
``fallback_user``), the move is appended to ``reassignments``, and the new
owner's deadline starts, which sets the next timer. A delivery that runs twice
finds the owner changed (or the deadline moved) and does nothing.

Every assignment notifies the new owner (see :mod:`.notify`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from qiao.api import (
    Actor,
    Delivery,
    Event,
    EventHandler,
    Record,
    Source,
    WriteContext,
    cancel_timer,
    notify_many,
    schedule_timers,
)
from qiao.plugins.leads import notify, routing

TIMER = "first_touch_sla"
HANDLER = "leads.first_touch_sla"
REASON = "first_touch_missed"


def after_lead_write(
    context: WriteContext, operation: str, record: Record, changes: dict[str, tuple[Any, Any]]
) -> None:
    """Keep the lead's timer in step with its owner, deadline and first touch; notify."""
    after_leads_written(context, operation, [record], [changes])


def after_leads_written(
    context: WriteContext,
    operation: str,
    records: Sequence[Record],
    changes: Sequence[dict[str, tuple[Any, Any]]],
) -> None:
    """:func:`after_lead_write` for a batch of leads: their new timers set together."""
    conn = context.connection
    if operation == "delete":
        for record in records:
            cancel_timer(conn, "lead", record["id"], TIMER)
        return
    due_timers = []
    for record, changed in zip(records, changes, strict=True):
        owner = record["owner_id"]
        due = record["first_touch_due_at"]
        untouched = record["first_touch_at"] is None and record["status"] in routing.OPEN_STATUSES
        if owner is None or due is None or not untouched:
            if operation == "update" and _touches(
                changed, "owner", "first_touch_due_at", "first_touch_at", "status"
            ):
                cancel_timer(conn, "lead", record["id"], TIMER)
        elif operation == "create" or _touches(changed, "owner", "first_touch_due_at", "status"):
            due_timers.append((record["id"], due, {"owner": owner, "due_at": _instant(due)}))
    schedule_timers(conn, "lead", TIMER, due_timers, created=operation == "create")
    notices = [
        notify.lead_assigned(context, record, reassigned=_reassigned(changed))
        for record, changed in zip(records, changes, strict=True)
        if record["owner_id"] is not None and (operation == "create" or "owner" in changed)
    ]
    notify_many(context, [n for n in notices if n is not None])


def handle(delivery: Delivery) -> None:
    """A lead's first-touch timer fired: reassign it if it is still untouched."""
    runtime = delivery.runtime
    records = runtime.records
    event = delivery.event
    request_id = delivery.id.replace("-", "")
    with records.transaction(Actor.system(), Source.AUTOMATION, request_id) as ctx:
        lead = records.get(ctx.connection, "lead", event.record_id, actor=Actor.system())
        now = records.clock()
        if lead is None or not _still_due(lead, event, now):
            return
        history = lead["reassignments"] or []
        if (
            history
            and history[-1]["to"] is None
            and history[-1]["due_at"] == _instant(lead["first_touch_due_at"])
        ):
            return  # this miss was recorded already, with nobody to hand the lead to
        catalog = runtime.current()
        owner = lead["owner_id"]
        values = {f.name: lead[f.column] for f in catalog.entity("lead").fields if f.column in lead}
        chosen = routing.reassign(
            ctx.connection, catalog, values, now, owner, lead["assignment_rule_id"]
        )
        entry = {
            "at": _instant(now),
            "from": owner,
            "to": chosen.owner_id if chosen else None,
            "rule": chosen.rule_id if chosen else None,
            "reason": REASON,
            "due_at": _instant(lead["first_touch_due_at"]),
        }
        change: dict[str, Any] = {"reassignments": [*history, entry]}
        if chosen is not None:
            change.update(
                owner=chosen.owner_id,
                assignment_rule=chosen.rule_id,
                assigned_at=now,
                first_touch_due_at=now + dt.timedelta(minutes=chosen.first_touch_minutes),
                reassignment_count=(lead["reassignment_count"] or 0) + 1,
            )
        records.update(ctx, "lead", lead["id"], change)


def handlers() -> list[EventHandler]:
    return [
        EventHandler(
            HANDLER,
            handle,
            entities=("lead",),
            operations=("timer",),
            when=lambda event: event.timer == TIMER,
        )
    ]


def _still_due(lead: Record, event: Event, now: dt.datetime) -> bool:
    """Untouched, open, owned by whom the timer was set for, and past its deadline."""
    payload = event.payload or {}
    due = lead["first_touch_due_at"]
    return (
        lead["first_touch_at"] is None
        and lead["status"] in routing.OPEN_STATUSES
        and lead["owner_id"] is not None
        and lead["owner_id"] == payload.get("owner")
        and due is not None
        and due <= now
    )


def _touches(changes: dict[str, tuple[Any, Any]], *names: str) -> bool:
    return any(name in changes for name in names)


def _reassigned(changes: dict[str, tuple[Any, Any]]) -> bool:
    old = changes.get("owner", (None, None))[0]
    return old is not None


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
