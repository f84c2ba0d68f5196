"""Law firms: matters and their teams, conflict checks with information walls, deadlines,
bankruptcy timelines, time entries and billing statements (docs/templates/law_firms.md).

The template is data: template.yaml, its entities, roles, rules and demo data. The Python
here does what data cannot say, through ``qiao.api``: name keys and conflict checks
(:mod:`conflicts`), deadline arithmetic (:mod:`deadlines`), the windows of the bankruptcy
law (:mod:`bankruptcy`), billed time (:mod:`billing`) and the conflict search (:mod:`search`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.api import Actor, EntityDef, WriteContext, hookimpl
from qiao.api.templates import Template

from . import bankruptcy, billing, conflicts, deadlines

TEMPLATE = Template.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends
QIAO_VERSION = TEMPLATE.version
# Pluggy finds the template's hook implementations among this module's attributes.
qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
qiao_demo_data = TEMPLATE.qiao_demo_data

NAMED = ("matter_party", "account", "contact")
WRITTEN = [
    "matter",
    *NAMED,
    "conflict_check",
    "conflict_waiver",
    "deadline",
    "time_entry",
]


@hookimpl(entities=WRITTEN)
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    name = entity.name
    if name == "deadline":
        deadlines.prepare(context, operation, values, existing)
    if operation == "delete":
        if name in {"conflict_check", "conflict_waiver"}:
            conflicts.refuse_delete(name)
        return
    if name == "matter":
        bankruptcy.check(values, existing)
    elif name in NAMED:
        conflicts.write_name_keys(entity, values, existing)
        if name == "matter_party":
            conflicts.lock_matter(
                context, values.get("matter") or (existing or {}).get("matter_id")
            )
    elif name == "conflict_check" and operation == "create":
        conflicts.prepare_check(context, values)
    elif name == "conflict_waiver" and operation == "create":
        conflicts.prepare_waiver(context, values)
    elif name == "time_entry":
        billing.prepare(context, operation, values, existing)


@hookimpl(entities=["matter", "matter_party", "conflict_check", "conflict_waiver"])
def qiao_after_record_write(
    context: WriteContext, entity: EntityDef, operation: str, record: dict[str, Any]
) -> None:
    if operation != "create":
        if entity.name == "matter_party" and operation == "update":
            conflicts.reset_on_party_change(context, record)
        return
    match entity.name:
        case "matter":
            _seed_team(context, record)
            conflicts.seed_parties(context, record)
        case "matter_party":
            conflicts.reset_on_party_change(context, record)
        case "conflict_check":
            conflicts.run_check(context, record)
        case "conflict_waiver":
            conflicts.apply_waiver(context, record)


def _seed_team(context: WriteContext, matter: dict[str, Any]) -> None:
    """The responsible and originating lawyers are on the matter's team from the start."""
    system = context.as_actor(Actor.system())
    seen: set[str] = set()
    for field, role in (
        ("responsible_lawyer_id", "RESPONSIBLE"),
        ("originating_lawyer_id", "ASSOCIATE"),
    ):
        user = matter.get(field)
        if user and user not in seen:
            seen.add(user)
            context.records.create(
                system, "matter_member", {"matter": matter["id"], "user": user, "member_role": role}
            )


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from . import search

    return [search.Query]
