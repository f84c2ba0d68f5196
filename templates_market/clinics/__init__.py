"""Outpatient clinics: patients with encrypted personal data, appointments, visits, follow-up.

The template is data: template.yaml, its entities, roles, pipeline and rules,
and demo data (docs/templates/clinics.md). This module hands them to the hooks,
and adds through ``qiao.api`` what data cannot say: an appointment's default
length, the follow-up tasks a closed visit's plans call for (with the patient's
consent, on working days), the calls counted on a task, the patient's last visit, and the
consents an erasure ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.api import EntityDef, Record, WriteContext, hookimpl
from qiao.api.templates import Template

from . import booking, consents, followup

TEMPLATE = Template.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends
QIAO_VERSION = TEMPLATE.version
# Pluggy finds the template's hook implementations among this module's attributes.
qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
qiao_demo_data = TEMPLATE.qiao_demo_data


# First, so that the end it fills in is there when the booking check runs.
@hookimpl(tryfirst=True, entities=["appointment", "followup_task", "followup_template"])
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: Record | None,
) -> None:
    if operation == "delete":
        return
    if entity.name == "appointment":
        if operation == "create":
            booking.fill_end(values)
    elif entity.name == "followup_task":
        followup.count_call(values, existing)
    else:
        if "days_after" in values:
            followup.days_after(values["days_after"])
        if values.get("calendar"):
            followup.calendar_of(context, values["calendar"])


@hookimpl(entities=["visit", "erasure_request"])
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: Record,
    changes: dict[str, tuple[Any, Any]],
) -> None:
    if operation == "delete":
        return
    if entity.name == "erasure_request":
        if operation == "create":
            consents.erased(context, record)
        return
    consents.visit_dated(context, record, changes)
    followup.plan_visit(context, record, changes)
