"""Consent and retention rules as a template declares them (docs/privacy.md).

Both become records (``consent_rule``, ``retention_rule``) that administrators
own afterwards, like roles and pipelines; :func:`consent_rules` and
:func:`retention_rules` read the active ones back for the guard and the sweep.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.metadata.sections import Section
from qiao.core.storage.database import transaction_state

#: The transaction's active consent rules by entity, and whether it wrote a consent rule.
_RULES = "privacy.consent_rules"
_RULES_WRITTEN = "privacy.consent_rules_written"


class ConsentRuleDecl(BaseModel):
    """Creating a record of ``entity`` needs a consent of the person ``subject`` names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    entity: str
    subject: str
    purposes: tuple[str, ...] = Field(min_length=1)
    sensitive: bool = False
    birth_date: str | None = None
    description: str | None = None
    active: bool = True


class RetentionRuleDecl(BaseModel):
    """How long records of ``entity`` keep a person's data, and what happens then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    entity: str
    subject: str | None = None
    after: str | None = None
    years: int | None = Field(default=None, ge=0, le=100)
    action: Literal["DELETE", "ANONYMISE"]
    fields: tuple[str, ...] = ()
    reason: str | None = None
    description: str | None = None
    active: bool = True


def consent_rules(conn: Connection, catalog: Catalog, entity: str) -> list[ConsentRuleDecl]:
    """The active consent rules on ``entity``.

    In a write transaction, every entity's rules are read once and kept for the rest
    of it: a webhook's transaction writes a lead, its receipt and a notification, and
    each write asked again. Once the transaction writes a consent rule
    (:func:`forget_consent_rules`), they are read anew for every write.
    """
    state = transaction_state(conn)
    if state is None or state.get(_RULES_WRITTEN):
        return _consent_rules(conn, catalog, entity)
    by_entity: dict[str | None, list[ConsentRuleDecl]] | None = state.get(_RULES)
    if by_entity is None:
        by_entity = {}
        for rule in _consent_rules(conn, catalog, None):
            by_entity.setdefault(rule.entity, []).append(rule)
        state[_RULES] = by_entity
    return by_entity.get(entity, [])


def forget_consent_rules(conn: Connection) -> None:
    """``conn``'s transaction writes a consent rule: read the rules anew until it ends."""
    state = transaction_state(conn)
    if state is not None:
        state[_RULES_WRITTEN] = True
        state.pop(_RULES, None)


def _consent_rules(conn: Connection, catalog: Catalog, entity: str | None) -> list[ConsentRuleDecl]:
    return [
        ConsentRuleDecl.model_validate(r) for r in _active(conn, catalog, "consent_rule", entity)
    ]


def retention_rules(
    conn: Connection, catalog: Catalog, entity: str | None = None
) -> list[RetentionRuleDecl]:
    """The active retention rules (on ``entity`` when given), in name order."""
    rows = _active(conn, catalog, "retention_rule", entity)
    return [RetentionRuleDecl.model_validate(r) for r in rows]


def _active(
    conn: Connection, catalog: Catalog, rule_entity: str, entity: str | None
) -> list[dict[str, Any]]:
    table = catalog.table(rule_entity)
    stmt = select(table).where(table.c.active.is_(True)).order_by(table.c.name)
    if entity is not None:
        stmt = stmt.where(table.c.entity == entity)
    keys = set(
        ConsentRuleDecl.model_fields
        if rule_entity == "consent_rule"
        else RetentionRuleDecl.model_fields
    )
    return [
        {k: v for k, v in row._mapping.items() if k in keys and v is not None}
        for row in conn.execute(stmt)
    ]


#: The ``consent_rules`` and ``retention_rules`` sections of a manifest (docs/privacy.md).
CONSENT_SECTION = Section("consent_rules", ConsentRuleDecl, entity="consent_rule")
RETENTION_SECTION = Section("retention_rules", RetentionRuleDecl, entity="retention_rule")
