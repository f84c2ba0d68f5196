"""Validation rules: a formula that must hold, refused writes naming the rule's field."""

from __future__ import annotations

import decimal

import pytest
from pydantic import ValidationError

from qiao.core.errors import BadUserInput
from qiao.core.formula import FieldInfo, FormulaTypeError, decimal_type
from qiao.core.formula.types import STRING
from qiao.core.formula.validation import check_rules, enforce
from qiao.core.metadata.model import ValidationRule

D = decimal.Decimal
FIELDS = {
    ("discount",): FieldInfo(decimal_type(4)),
    ("amount",): FieldInfo(decimal_type(2)),
    ("reason",): FieldInfo(STRING),
}
RULES = check_rules(
    [
        ValidationRule(
            name="discount_cap",
            formula="discount <= 0.3",
            message="折扣不能超过 30%",
            field="discount",
        ),
        ValidationRule(
            name="reason_for_big_discounts",
            formula="OR(BLANKVALUE(discount, 0) < 0.1, NOT(ISBLANK(reason)))",
            message="A discount of 10% or more needs a reason",
            field="reason",
        ),
    ],
    FIELDS.get,
)


def test_a_record_that_keeps_every_rule_passes() -> None:
    enforce(RULES, {"discount": D("0.05"), "amount": D("10.00"), "reason": None})
    enforce(RULES, {"discount": D("0.2"), "amount": D("10.00"), "reason": "大客户"})


def test_a_broken_rule_is_bad_user_input_with_its_message_field_and_name() -> None:
    with pytest.raises(BadUserInput) as caught:
        enforce(RULES, {"discount": D("0.35"), "amount": D("1.00"), "reason": "x"})
    assert caught.value.message == "折扣不能超过 30%"
    assert caught.value.extensions() == {
        "code": "BAD_USER_INPUT",
        "field": "discount",
        "rule": "discount_cap",
    }
    with pytest.raises(BadUserInput, match="needs a reason") as caught:
        enforce(RULES, {"discount": D("0.1"), "amount": D("1.00"), "reason": ""})
    assert caught.value.field == "reason"


def test_a_rule_whose_formula_gives_null_passes_like_a_check_constraint() -> None:
    enforce(RULES, {"discount": None, "amount": None, "reason": None})


def test_rules_must_be_conditions_and_errors_name_the_rule() -> None:
    with pytest.raises(FormulaTypeError) as caught:
        check_rules([ValidationRule(name="bad", formula="amount * 2", message="m")], FIELDS.get)
    assert str(caught.value).startswith(
        "line 1, column 8: rule bad: the formula must give a TRUE or FALSE, not decimal"
    )


def test_rule_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="name"):
        ValidationRule(name="Bad Name", formula="TRUE", message="m")
    with pytest.raises(ValidationError, match="message"):
        ValidationRule(name="ok", formula="TRUE", message="")
