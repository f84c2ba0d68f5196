"""Lawful erasure of one person's data, and the retention sweep (docs/privacy.md).

Both follow the retention rules: a record still inside its legal period
(``years`` after its ``after`` date) is kept and reported with the rule's
reason; any other is deleted or anonymised as its rule says. Every change goes
through the records service as source ``erasure``, which the audit log and the
outbox record as "changed" without the values, so the erasure is audited and
the erased data is not copied into the log. The report is kept as an
``erasure_request`` record; it names entities, ids and rules, never values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from qiao.core.errors import BadUserInput, NotFound
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.privacy.consent import today, years_after
from qiao.core.privacy.rules import RetentionRuleDecl, retention_rules
from qiao.core.records.context import Actor, Source, WriteContext

#: Records read per page by the retention sweep.
PAGE = 200
#: What a required text field holds once anonymised.
ANONYMISED = "已匿名"
Report = dict[str, list[dict[str, Any]]]


def erase_subject(
    context: WriteContext, entity: str, record_id: str, reason: str | None = None
) -> Report:
    """Erase what the retention rules let go of the person ``entity``/``record_id``."""
    records = context.records
    if records.get(context.connection, entity, record_id, actor=Actor.system()) is None:
        raise NotFound(f"no {entity} with id {record_id}", field="id")
    rules = retention_rules(context.connection, context.catalog)
    if not any(_reaches(context, r, entity) for r in rules):
        raise BadUserInput(f"no retention rule says what to erase of a {entity}", field="entity")
    report: Report = {"erased": [], "kept": []}
    erasing = replace(context, source=Source.ERASURE)
    # Records about the person first; the person's own record last, since they refer to it.
    for rule in sorted(rules, key=lambda r: not r.subject):
        if not _reaches(context, rule, entity):
            continue
        for found in _records_of(context, rule, record_id):
            _settle(erasing, rule, found, report)
    records.create(
        context,
        "erasure_request",
        {
            "subject_entity": entity,
            "subject_id": record_id,
            "reason": reason,
            "completed_at": context.now(),
            "report": report,
        },
    )
    return report


def apply_retention(context: WriteContext) -> Report:
    """Delete or anonymise every record whose retention period has ended.

    The period may count from a stored date or a computed one ("15 years after
    the last visit": a rollup of the visits' dates), since records are found
    through the records service's filters, which compute them.
    """
    report: Report = {"erased": [], "kept": []}
    erasing = replace(context, source=Source.ERASURE)
    for rule in retention_rules(context.connection, context.catalog):
        if not rule.after or rule.years is None:
            continue
        entity = context.catalog.entity(rule.entity)
        after = entity.field(rule.after)
        assert after is not None
        cutoff: dt.date | dt.datetime = years_after(today(context), -rule.years)
        if after.type is FieldType.DATETIME:
            cutoff = dt.datetime.combine(cutoff, dt.time(), tzinfo=dt.UTC)
        for found in _expired(context, rule.entity, rule.after, cutoff):
            if not _already_settled(entity, rule, found):
                _settle(erasing, rule, found, report)
    return report


def _expired(
    context: WriteContext, entity: str, after: str, cutoff: dt.date | dt.datetime
) -> list[dict[str, Any]]:
    """Every record of ``entity`` whose ``after`` date is before ``cutoff``, page by page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = context.records.list(
            context.connection,
            entity,
            filter={after: {"lt": cutoff.isoformat()}},
            first=PAGE,
            after=cursor,
            actor=Actor.system(),
        )
        found += page.records
        if not page.has_next_page:
            return found
        cursor = page.cursors[-1]


def _reaches(context: WriteContext, rule: RetentionRuleDecl, entity: str) -> bool:
    """Whether ``rule`` covers records of a person of ``entity``."""
    if not rule.subject:
        return rule.entity == entity
    field = context.catalog.entity(rule.entity).field(rule.subject)
    return field is not None and field.target == entity


def _records_of(
    context: WriteContext, rule: RetentionRuleDecl, subject_id: str
) -> list[dict[str, Any]]:
    records = context.records
    if not rule.subject:
        found = records.get(context.connection, rule.entity, subject_id, actor=Actor.system())
        return [] if found is None else [found]
    table = context.catalog.table(rule.entity)
    column = table.c[context.catalog.entity(rule.entity).field(rule.subject).column]  # type: ignore[union-attr]
    ids = [r[0] for r in context.connection.execute(select(table.c.id).where(column == subject_id))]
    return [
        r
        for r in (
            records.get(context.connection, rule.entity, i, actor=Actor.system()) for i in ids
        )
        if r is not None
    ]


def _kept_until(
    rule: RetentionRuleDecl, record: dict[str, Any], entity: EntityDef
) -> dt.date | None:
    if not rule.after or rule.years is None:
        return None
    field = entity.field(rule.after)
    start = None if field is None else record.get(field.column, record.get(field.name))
    if start is None:
        return None
    if isinstance(start, dt.datetime):
        start = start.date()
    return years_after(start, rule.years)


def _settle(
    context: WriteContext, rule: RetentionRuleDecl, record: dict[str, Any], report: Report
) -> None:
    entity = context.catalog.entity(rule.entity)
    until = _kept_until(rule, record, entity)
    item = {"entity": rule.entity, "id": record["id"], "rule": rule.name}
    if until is not None and until > today(context):
        report["kept"].append(item | {"until": until.isoformat(), "reason": rule.reason or ""})
        return
    if rule.action == "DELETE":
        context.records.delete(context, rule.entity, record["id"])
        report["erased"].append(item | {"action": "DELETED"})
        return
    context.records.update(context, rule.entity, record["id"], _blanks(entity, rule))
    report["erased"].append(item | {"action": "ANONYMISED", "fields": list(rule.fields)})


def _blanks(entity: EntityDef, rule: RetentionRuleDecl) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in rule.fields:
        field = entity.field(name)
        if field is None:
            raise BadUserInput(f"retention rule {rule.name}: {entity.name} has no field {name}")
        values[name] = ANONYMISED if field.required else None
    return values


def _already_settled(entity: EntityDef, rule: RetentionRuleDecl, record: dict[str, Any]) -> bool:
    blanks = _blanks(entity, rule)
    return rule.action == "ANONYMISE" and all(record.get(k) == v for k, v in blanks.items())
