"""Validation rules: a boolean formula that must hold, the message to show, the field to blame.

A rule states what is valid (``discount <= 0.3``), like a SQL CHECK
constraint, and like one it passes when its formula gives NULL: a rule about
a discount says nothing about a record without one. Use ISBLANK() in the rule
when a blank value is itself the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qiao.core.errors import BadUserInput
from qiao.core.formula.checker import Formula, check
from qiao.core.formula.errors import FormulaError
from qiao.core.formula.evaluator import Clock, evaluate
from qiao.core.formula.types import Kind, Resolver
from qiao.core.metadata.model import ValidationRule


@dataclass(frozen=True)
class CheckedRule:
    rule: ValidationRule
    formula: Formula


def check_rules(rules: Sequence[ValidationRule], resolver: Resolver) -> tuple[CheckedRule, ...]:
    """Type every rule's formula as TRUE/FALSE; a FormulaError names the rule it is about."""
    checked = []
    for rule in rules:
        try:
            formula = check(rule.formula, resolver, expect=Kind.BOOLEAN)
        except FormulaError as exc:
            raise type(exc)(f"rule {rule.name}: {exc.message}", exc.position, exc.source) from None
        checked.append(CheckedRule(rule, formula))
    return tuple(checked)


def enforce(
    rules: Sequence[CheckedRule], values: Mapping[str, Any], clock: Clock | None = None
) -> None:
    """Raise BAD_USER_INPUT with the message of the first rule ``values`` break, in rule order.

    ``values`` holds the record as it will be after the write, by dotted path, as
    :func:`~qiao.core.formula.evaluator.evaluate` takes it.
    """
    for checked in rules:
        if evaluate(checked.formula, values, clock) is False:
            rule = checked.rule
            raise BadUserInput(rule.message, field=rule.field, rule=rule.name)
