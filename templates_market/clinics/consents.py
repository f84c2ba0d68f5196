"""What the clinic does with consents and visits beyond the privacy rules it declares.

privacy.yaml declares which records need which consent and how long records are
kept; the built-in privacy plugin enforces them. Three things follow from them
that data cannot say:

- follow-up tasks are planned only for patients who gave a live, separate
  consent to follow-up (a guardian's under 14), so closing a visit never trips
  the follow-up consent rule;
- ``patient.last_visit_on`` is kept stored, as the date the retention of the
  patient's identity counts from;
- an erasure of a patient removes the consents for marketing and follow-up, whose
  purposes end with it; the treatment consent stays with the medical records it
  is the basis of, for as long as they are kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from qiao.api import Actor, Record, WriteContext

SYSTEM = Actor.system()
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Purposes whose consents an erasure removes.
ENDED_BY_ERASURE = ("marketing", "follow_up")
GUARDIAN_AGE = 14


def follow_up_allowed(context: WriteContext, patient: Record) -> bool:
    """Whether ``patient`` has a live, separate consent to follow-up (a guardian's if a child)."""
    now = context.now()
    live = context.records.list(
        context.connection,
        "consent",
        filter={
            "subject_entity": {"eq": "patient"},
            "subject_id": {"eq": patient["id"]},
            "purpose": {"eq": "follow_up"},
            "sensitive": {"eq": True},
            "granted_at": {"lte": now},
            "or": [{"withdrawn_at": {"is_null": True}}, {"withdrawn_at": {"gt": now}}],
        },
        first=20,
        actor=SYSTEM,
    ).records
    if _minor(patient, now.astimezone(SHANGHAI).date()):
        live = [c for c in live if c["given_by"] == "GUARDIAN"]
    return bool(live)


def visit_dated(context: WriteContext, record: Record, changes: dict[str, Any]) -> None:
    """Move the patient's ``last_visit_on`` forward to this visit's date."""
    if "visited_on" not in changes:
        return
    patient = context.records.get(context.connection, "patient", record["patient_id"], actor=SYSTEM)
    if patient is None:
        return
    last: dt.date | None = patient["last_visit_on"]
    if last is None or record["visited_on"] > last:
        context.records.update(
            context.as_actor(SYSTEM),
            "patient",
            patient["id"],
            {"last_visit_on": record["visited_on"]},
        )


def erased(context: WriteContext, record: Record) -> None:
    """Remove a patient's marketing and follow-up consents when the patient is erased."""
    if record["subject_entity"] != "patient":
        return
    ended = context.records.list(
        context.connection,
        "consent",
        filter={
            "subject_entity": {"eq": "patient"},
            "subject_id": {"eq": record["subject_id"]},
            "purpose": {"in": list(ENDED_BY_ERASURE)},
        },
        first=100,
        actor=SYSTEM,
    ).records
    for consent in ended:
        context.records.delete(context.as_actor(SYSTEM), "consent", consent["id"])


def _minor(patient: Record, today: dt.date) -> bool:
    birth: dt.date | None = patient["birth_date"]
    if birth is None:
        return False
    try:
        fourteenth = birth.replace(year=birth.year + GUARDIAN_AGE)
    except ValueError:  # born on 29 February
        fourteenth = birth.replace(year=birth.year + GUARDIAN_AGE, day=28)
    return today < fourteenth
