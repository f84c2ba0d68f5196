"""Formula and rollup fields and validation rules as metadata: declared, checked, changed live."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData, inspect

from qiao.core.customisation.changes import MetadataChanges
from qiao.core.errors import BadUserInput, MetadataError
from qiao.core.formula.computed import check_computed, computed_fields
from qiao.core.metadata.model import EntityDef, FieldDef, ValidationRule
from qiao.core.metadata.registry import Registry
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.schema.tables import build_table

ADMIN = Actor.system()
L = {"en": "x"}


def entity(name: str, *fields: dict[str, Any], **options: Any) -> EntityDef:
    return EntityDef.model_validate(
        {"name": name, "plural": f"{name}s", "label": L, "fields": list(fields), **options}
    )


def f(name: str, type_: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": L, **options}


DEALER = entity(
    "dealer",
    f("region", "string"),
    f("secret", "string", encrypted=True),
    f(
        "total",
        "decimal",
        scale=2,
        rollup={"function": "sum", "entity": "order", "link": "dealer", "field": "amount"},
    ),
)
ORDER = entity(
    "order",
    f("dealer", "relation", target="dealer"),
    f("amount", "decimal", precision=12, scale=2),
    f("ordered_on", "date"),
)


def build(*formula_fields: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> Registry:
    order = ORDER
    for extra in formula_fields:
        order = order.with_field(FieldDef.model_validate(extra))
    if rules:
        checked = tuple(ValidationRule.model_validate(r) for r in rules)
        order = order.model_copy(update={"validation_rules": checked}).revalidated()
    return check_computed(Registry.build([DEALER, order]))


def test_computed_fields_have_no_column() -> None:
    registry = build(f("doubled", "decimal", scale=2, formula="amount * 2"))
    table = build_table(registry.entity("order"), MetaData())
    assert "doubled" not in table.c and "amount" in table.c
    assert "total" not in build_table(registry.entity("dealer"), MetaData()).c


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"required": True}, "cannot be required"),
        ({"unique": True, "indexed": True}, "cannot be unique, indexed"),
        ({"default": "1.00"}, "cannot be default"),
        ({"type": "json"}, "a computed field is of type"),
        ({"rollup": {"function": "count", "entity": "order", "link": "dealer"}}, "not both"),
    ],
)
def test_computed_fields_refuse_options_of_stored_ones(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FieldDef.model_validate(f("x", "decimal", formula="amount", **options))


@pytest.mark.parametrize(
    ("field", "message", "column"),
    [
        (f("x", "decimal", scale=2, formula="amount / 3"), "ROUND\\(\\.\\.\\., 2\\)", 8),
        (f("x", "integer", formula="amount"), "gives decimal but x is a integer field", 1),
        (f("x", "string", formula="dealer.secret"), "encrypted; formulas cannot read", 1),
        (f("x", "decimal", scale=2, formula="amount + dealer.nope"), "unknown field", 10),
        (f("x", "boolean", formula="ordered_on > "), "ends too early", 14),
    ],
)
def test_formulas_are_checked_against_the_declared_type_with_positions(
    field: dict[str, Any], message: str, column: int
) -> None:
    with pytest.raises(MetadataError, match=message) as caught:
        build(field)
    assert caught.value.field == "x"
    assert caught.value.details["column"] == column
    assert str(caught.value).startswith("order.x: line 1")


def test_decimal_formulas_with_fewer_places_are_widened_exactly() -> None:
    registry = build(f("x", "decimal", scale=4, formula="amount + 1"))
    formula = computed_fields(registry).field("order", "x").formula
    assert formula is not None and str(formula.type) == "decimal(4)"


def test_formulas_read_rollups_and_formulas_through_relations_but_not_in_cycles() -> None:
    registry = build(
        f("share", "decimal", scale=6, formula="amount / dealer.total"),
        f("pct", "decimal", scale=6, formula="share * 100"),
    )
    pct = computed_fields(registry).field("order", "pct")
    assert pct.formula is not None
    assert pct.formula.fields == ("amount", "dealer.total")
    assert ("order", "amount") in pct.depends_on and ("dealer", "total") not in pct.depends_on
    with pytest.raises(MetadataError, match=r"cycle: order\.a -> order\.b -> order\.a"):
        build(f("a", "integer", formula="b + 1"), f("b", "integer", formula="a + 1"))


@pytest.mark.parametrize(
    ("rollup", "type_", "message"),
    [
        (
            {"function": "sum", "entity": "order", "link": "dealer", "field": "amount"},
            {"type": "integer"},
            "declare the field as decimal with scale 2",
        ),
        (
            {"function": "count", "entity": "nothing", "link": "dealer"},
            {"type": "integer"},
            "unknown entity 'nothing'",
        ),
        (
            {"function": "count", "entity": "order", "link": "amount"},
            {"type": "integer"},
            "not a relation to dealer",
        ),
        (
            {
                "function": "count",
                "entity": "order",
                "link": "dealer",
                "parent_filter": {"ordered_on": {"gte": "region"}},
            },
            {"type": "integer"},
            "not a stored field comparable with order.ordered_on",
        ),
    ],
)
def test_rollups_are_checked_with_the_child(
    rollup: dict[str, Any], type_: dict[str, Any], message: str
) -> None:
    dealer = DEALER.with_field(
        FieldDef.model_validate({"name": "r", "label": L, **type_, "rollup": rollup})
    )
    with pytest.raises(MetadataError, match=message):
        check_computed(Registry.build([dealer, ORDER]))


def test_validation_rules_are_checked_when_the_registry_is_built() -> None:
    rule = {"name": "cap", "formula": "amount <= 100", "message": "太多", "field": "amount"}
    assert computed_fields(build(rules=[rule])).rules("order")[0].rule.name == "cap"
    with pytest.raises(MetadataError, match=r"rule wrong: .*must give a TRUE or FALSE"):
        build(rules=[{**rule, "name": "wrong", "formula": "amount + 1"}])
    with pytest.raises(ValueError, match="validation rule names repeat"):
        build(rules=[rule, rule])


def test_computed_fields_cannot_be_indexed_through_the_entity() -> None:
    with pytest.raises(ValueError, match="names computed fields"):
        entity("e", f("a", "integer"), f("b", "integer", formula="a"), indexes=[["a", "b"]])


# -- Run-time changes ----------------------------------------------------------------------


def columns(runtime: Runtime, table: str) -> set[str]:
    with runtime.db.read() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def test_adding_and_dropping_computed_fields_changes_no_table(qiao_runtime: Runtime) -> None:
    changes = MetadataChanges(qiao_runtime)
    before = columns(qiao_runtime, "account")
    changes.add_field(
        "account",
        f("weighted", "decimal", scale=2, formula="ROUND(annual_revenue * 0.5, 2)"),
        actor=ADMIN,
    )
    assert columns(qiao_runtime, "account") == before
    records = qiao_runtime.records
    with records.transaction(ADMIN, Source.SYSTEM) as ctx:
        made = records.create(ctx, "account", {"name": "o", "annual_revenue": "10.01"})
    assert str(made["weighted"]) == "5.01"
    with pytest.raises(MetadataError, match="cannot become computed"):
        changes.alter_field("account", "weighted", f("weighted", "decimal", scale=2), actor=ADMIN)
    changes.alter_field(
        "account",
        "weighted",
        f("weighted", "decimal", scale=2, formula="ROUND(annual_revenue * 0.25, 2)"),
        actor=ADMIN,
    )
    changes.add_field(
        "account", f("again", "decimal", scale=2, formula="weighted + 1"), actor=ADMIN
    )
    with pytest.raises(MetadataError, match="unknown field weighted"):
        changes.drop_field("account", "weighted", actor=ADMIN)
    changes.drop_field("account", "again", actor=ADMIN)
    changes.drop_field("account", "weighted", actor=ADMIN)
    assert columns(qiao_runtime, "account") == before
    assert qiao_runtime.current().entity("account").field("weighted") is None


def test_rules_added_at_run_time_apply_and_survive_a_restart(qiao_runtime: Runtime) -> None:
    changes = MetadataChanges(qiao_runtime)
    rule = {"name": "named", "formula": "LEN_OK", "message": "m"}
    with pytest.raises(MetadataError, match="is not a field name"):
        changes.add_validation_rule("account", rule, actor=ADMIN)
    rule = {
        "name": "positive",
        "formula": "annual_revenue > 0",
        "message": "金额须为正",
        "field": "annual_revenue",
    }
    changes.add_validation_rule("account", rule, actor=ADMIN)
    with qiao_runtime.db.read() as conn:
        rebuilt = qiao_runtime.build_registry(conn)
    assert [r.name for r in rebuilt.entity("account").validation_rules] == ["positive"]
    records = qiao_runtime.records
    with (
        pytest.raises(BadUserInput, match="金额须为正"),
        records.transaction(ADMIN, Source.SYSTEM) as ctx,
    ):
        records.create(ctx, "account", {"name": "o", "annual_revenue": "0.00"})
    changes.drop_validation_rule("account", "positive", actor=ADMIN)
    with records.transaction(ADMIN, Source.SYSTEM) as ctx:
        records.create(ctx, "account", {"name": "o", "annual_revenue": "0.00"})
