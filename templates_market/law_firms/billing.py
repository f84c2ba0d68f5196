"""Time billed as firms bill it: tenths of an hour rounded up, at the lawyer's rate, to the fen.

A time entry's ``billed_hours`` is its hours rounded up to the next tenth (0.25 h bills 0.3);
its ``rate``, unless given, is the lawyer's rate on the matter (``matter_member``), else the
engagement's hourly rate; ``amount`` is the product, exact (a tenth times a rate in fen is
exact in fen). Billing statements add the billable entries of their matter and period up with
rollups (entities.yaml).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from qiao.api import Actor, WriteContext

TENTH = Decimal("0.1")
FEN = Decimal("0.01")
INPUTS = ("hours", "rate", "lawyer", "matter")
SYSTEM = Actor.system()


def billed(hours: Decimal) -> Decimal:
    """Hours rounded up to the next tenth: 1.01 -> 1.1, 1.10 -> 1.1."""
    return hours.quantize(TENTH, rounding=ROUND_CEILING)


def rate_for(context: WriteContext, matter_id: str, lawyer_id: str | None) -> Decimal | None:
    """The lawyer's rate on the matter, else the matter's hourly engagement rate."""
    records, conn = context.records, context.connection
    if lawyer_id is not None:
        members = records.list(
            conn,
            "matter_member",
            filter={"matter_id": {"eq": matter_id}, "user_id": {"eq": lawyer_id}},
            first=1,
            actor=SYSTEM,
        ).records
        if members and members[0].get("hourly_rate") is not None:
            rate: Decimal = members[0]["hourly_rate"]
            return rate
    engagements = records.list(
        conn,
        "client_engagement",
        filter={"matter_id": {"eq": matter_id}, "hourly_rate": {"is_null": False}},
        first=1,
        actor=SYSTEM,
    ).records
    return engagements[0]["hourly_rate"] if engagements else None


def prepare(
    context: WriteContext, operation: str, values: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    """Fill ``billed_hours``, ``rate`` and ``amount`` from what the entry says."""
    values.pop("billed_hours", None)
    values.pop("amount", None)
    if operation == "update" and not any(name in values for name in INPUTS):
        return
    merged = {**(existing or {}), **values}
    if operation == "create" and values.get("lawyer") is None and context.actor.user_id:
        values["lawyer"] = merged["lawyer"] = context.actor.user_id
    lawyer = merged.get("lawyer", merged.get("lawyer_id"))
    # Required, so a write without a matter was refused before this hook ran.
    matter: str = merged.get("matter") or merged["matter_id"]
    rate = merged.get("rate")
    if rate is None or ("rate" not in values and ("lawyer" in values or "matter" in values)):
        rate = rate_for(context, matter, lawyer)
        values["rate"] = rate
    hours = billed(merged["hours"])
    values["billed_hours"] = hours
    values["amount"] = (hours * rate).quantize(FEN) if rate is not None else None
