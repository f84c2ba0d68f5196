"""The consent guard: a record that needs a person's consent is refused without it.

Declared by ``consent_rules:`` (docs/privacy.md). A consent counts while it is
granted and not withdrawn, for one of the rule's purposes, covering sensitive
data when the rule asks for it (PIPL art. 29), and given by a guardian when
the person is under 14 on the runtime's clock (art. 31), so a replayed clock
sees a child come of age.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from qiao.core.errors import BadUserInput
from qiao.core.metadata.model import EntityDef
from qiao.core.privacy.rules import ConsentRuleDecl, consent_rules
from qiao.core.records.context import Actor, WriteContext

#: Under this age only a guardian's consent counts (PIPL art. 31).
GUARDIAN_AGE = 14
#: Ages and days are counted in China's time zone.
ZONE = ZoneInfo("Asia/Shanghai")


def check_consent(
    context: WriteContext,
    entity: EntityDef,
    values: dict[str, Any],
    existing: dict[str, Any] | None = None,
    rules: Sequence[ConsentRuleDecl] | None = None,
) -> None:
    """Refuse a record of ``entity`` whose person lacks a consent a rule requires.

    Checked when the record is created and when an update moves it to another
    person; editing a record whose person has since withdrawn is not refused
    (withdrawal stops new processing, it does not freeze what was done).
    ``rules`` are the entity's active rules when the caller read them already
    (once for a batch).
    """
    if rules is None:
        rules = consent_rules(context.connection, context.catalog, entity.name)
    for rule in rules:
        subject_id = values.get(rule.subject)
        field = entity.field(rule.subject)
        if subject_id is None or field is None or field.target is None:
            continue
        if existing is not None and existing.get(field.column) == subject_id:
            continue
        if not _consented(context, rule, field.target, subject_id):
            raise BadUserInput(
                _refusal(context, rule, field.target, subject_id), field=rule.subject
            )


def today(context: WriteContext) -> dt.date:
    return context.now().astimezone(ZONE).date()


def is_minor(birth: dt.date | None, on: dt.date) -> bool:
    """Whether someone born on ``birth`` is under :data:`GUARDIAN_AGE` on ``on``."""
    return birth is not None and on < years_after(birth, GUARDIAN_AGE)


def years_after(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` later (or earlier); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _minor(context: WriteContext, rule: ConsentRuleDecl, target: str, subject_id: str) -> bool:
    if not rule.birth_date:
        return False
    subject = context.records.get(context.connection, target, subject_id, actor=Actor.system())
    birth = subject.get(rule.birth_date) if subject is not None else None
    return is_minor(birth, today(context))


def _consented(context: WriteContext, rule: ConsentRuleDecl, target: str, subject_id: str) -> bool:
    consents = context.catalog.table("consent")
    now = context.now()
    stmt = select(consents.c.id).where(
        consents.c.subject_entity == target,
        consents.c.subject_id == subject_id,
        consents.c.purpose.in_(rule.purposes),
        consents.c.granted_at <= now,
        (consents.c.withdrawn_at.is_(None)) | (consents.c.withdrawn_at > now),
    )
    if rule.sensitive:
        stmt = stmt.where(consents.c.sensitive.is_(True))
    if _minor(context, rule, target, subject_id):
        stmt = stmt.where(consents.c.given_by == "GUARDIAN")
    return context.connection.execute(stmt.limit(1)).first() is not None


def _refusal(context: WriteContext, rule: ConsentRuleDecl, target: str, subject_id: str) -> str:
    purposes = " or ".join(rule.purposes)
    kind = "separate consent to sensitive data" if rule.sensitive else "consent"
    who = "a guardian's " if _minor(context, rule, target, subject_id) else ""
    return (
        f"this {target} has not given {who}{kind} for {purposes} (rule {rule.name}); "
        "record the consent first"
    )
