"""The built-in ``privacy`` plugin: consent guard, erasure and retention (docs/privacy.md).

Always enabled (``BUILTIN_PLUGINS``): templates declare ``consent_rules:`` and
``retention_rules:``, and the guard runs in every create, whichever door the
write came through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.privacy.consent import check_consent
from qiao.core.privacy.rules import (
    ConsentRuleDecl,
    RetentionRuleDecl,
    consent_rules,
    forget_consent_rules,
)
from qiao.core.records.context import WriteContext

MANIFEST = Path(__file__).with_name("entities.yaml")
_DATES = {FieldType.DATE, FieldType.DATETIME}


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if entity.name == "consent_rule":
        forget_consent_rules(context.connection)
    if operation == "delete":
        return
    if entity.name in {"consent_rule", "retention_rule"}:
        _check_rule(context, entity.name, (existing or {}) | values)
    else:
        check_consent(context, entity, values, existing)


@hookimpl
def qiao_before_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: list[dict[str, Any]],
    existing: list[dict[str, Any] | None],
) -> None:
    """The consent guard for a batch: the entity's rules read once, checked row by row."""
    if entity.name == "consent_rule":
        forget_consent_rules(context.connection)
    if operation == "delete":
        return
    if entity.name in {"consent_rule", "retention_rule"}:
        for row, stored in zip(values, existing, strict=True):
            _check_rule(context, entity.name, (stored or {}) | row)
        return
    rules = consent_rules(context.connection, context.catalog, entity.name)
    for row, stored in zip(values, existing, strict=True):
        check_consent(context, entity, row, stored, rules)


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.privacy import graphql

    return graphql.TYPES


def _check_rule(context: WriteContext, kind: str, record: dict[str, Any]) -> None:
    """A rule must name an entity, a relation to the person and date fields that exist."""
    catalog = context.catalog
    keys = (
        ConsentRuleDecl.model_fields if kind == "consent_rule" else RetentionRuleDecl.model_fields
    )
    rule = {k: v for k, v in record.items() if k in keys and v is not None}
    entity_name = rule.get("entity")
    if entity_name not in catalog.registry.entities:
        raise BadUserInput(f"no entity {entity_name!r}", field="entity")
    entity = catalog.entity(entity_name)
    subject = entity.field(rule["subject"]) if rule.get("subject") else None
    if rule.get("subject") and (subject is None or subject.type is not FieldType.RELATION):
        raise BadUserInput(f"{entity_name}.{rule['subject']} is not a relation", field="subject")
    if kind == "consent_rule":
        if subject is None:
            raise BadUserInput("a consent rule names the relation to the person", field="subject")
        birth = rule.get("birth_date")
        target = catalog.entity(subject.target or "")
        if birth and (target.field(birth) is None or target.field(birth).type not in _DATES):  # type: ignore[union-attr]
            raise BadUserInput(f"{target.name}.{birth} is not a date field", field="birth_date")
        return
    after = rule.get("after")
    if after and (entity.field(after) is None or entity.field(after).type not in _DATES):  # type: ignore[union-attr]
        raise BadUserInput(f"{entity_name}.{after} is not a date field", field="after")
    for name in rule.get("fields") or ():
        if entity.field(name) is None:
            raise BadUserInput(f"{entity_name} has no field {name!r}", field="fields")
