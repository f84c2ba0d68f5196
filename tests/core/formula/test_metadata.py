"""Formulas on Qiao entities: what fields and related paths a formula may read."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.core.formula import check, decimal_type
from qiao.core.formula.metadata import entity_resolver, field_info
from qiao.core.metadata.model import EntityDef, FieldDef

LABEL = {"en": "x"}


def entity(name: str, *fields: dict[str, Any]) -> EntityDef:
    return EntityDef.model_validate(
        {
            "name": name,
            "plural": f"{name}s",
            "label": LABEL,
            "fields": [{"label": LABEL, **f} for f in fields],
        }
    )


ENTITIES = {
    "user": entity("user", {"name": "display_name", "type": "string"}),
    "account": entity(
        "account",
        {"name": "region", "type": "enum", "values": [{"value": "EAST"}, {"value": "WEST"}]},
        {"name": "owner", "type": "relation", "target": "user"},
        {"name": "profile", "type": "json"},
    ),
    "deal": entity(
        "deal",
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
        {"name": "account", "type": "relation", "target": "account"},
    ),
}
RESOLVE = entity_resolver(ENTITIES, "deal")


def test_fields_map_to_formula_types() -> None:
    amount = field_info(ENTITIES["deal"].fields[0])
    assert amount is not None
    assert (amount.type, amount.precision) == (decimal_type(2), 12)
    email = FieldDef.model_validate({"name": "e", "type": "email", "label": LABEL})
    assert str(field_info(email).type) == "string"  # type: ignore[union-attr]


def test_related_paths_follow_relations() -> None:
    formula = check('IF(account.region = "EAST", account.owner.display_name, "")', RESOLVE)
    assert formula.fields == ("account.region", "account.owner.display_name")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("account.regoin", "unknown field account.regoin"),
        ("amount.x", "deal has no relation amount"),
        ("account", "account is a relation; read one of its fields, such as account.name"),
        ("ISBLANK(account.profile)", "json field profile cannot be used in a formula"),
        ('account.region = "NORTH"', "account.region has no value 'NORTH'"),
    ],
)
def test_paths_that_lead_nowhere_are_refused(text: str, message: str) -> None:
    from qiao.core.formula import FormulaTypeError

    with pytest.raises(FormulaTypeError, match=message):
        check(text, RESOLVE)
