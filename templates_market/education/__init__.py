"""K-12 tutoring centres: inquiries to enrolment, timetables, hours and prepaid-fee rules.

The template is data: template.yaml, its entities, roles, pipeline and rules,
and demo data (docs/templates/education.md). This module hands them to the
hooks, and adds through ``qiao.api`` what data cannot say: filling an
attendance from its lesson, the renewal task, the prepaid-fee rules, trial
lessons moving their inquiry, teachers' shares of their students, and the
dashboard's GraphQL fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.api import EntityDef, Record, WriteContext, hookimpl
from qiao.api.templates import Template

from . import hours, prepaid, sharing, trials

TEMPLATE = Template.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends
QIAO_VERSION = TEMPLATE.version
# Pluggy finds the template's hook implementations among this module's attributes.
qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
qiao_demo_data = TEMPLATE.qiao_demo_data


@hookimpl(entities=["attendance", "fee_payment"])
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: Record | None,
) -> None:
    if operation == "delete":
        return
    if entity.name == "attendance":
        hours.fill_attendance(context, values, existing)
    elif entity.name == "fee_payment" and operation == "create":
        prepaid.check_purchase(context, values)


@hookimpl(entities=["attendance", "lesson", "enrollment", "guardian"])
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: Record,
    changes: dict[str, tuple[Any, Any]],
) -> None:
    if entity.name == "enrollment":
        sharing.enrolment_moved(context, operation, record, changes)
    elif entity.name == "guardian":
        sharing.guardian_added(context, operation, record)
    elif operation == "delete":
        return
    elif entity.name == "attendance":
        hours.renewal_due(context, record, changes)
    elif entity.name == "lesson":
        trials.trial_moved(context, record, changes)


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from . import dashboard

    return [dashboard.Query]
