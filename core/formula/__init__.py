"""Qiao's formula language: formula fields, rollups and validation rules.

Parse and type a formula once, when it is defined (:func:`check`); then
evaluate it in Python (:func:`evaluate`) or compile it to SQL for filters and
ORDER BY (:func:`compile_formula`). The language is documented in
docs/formulas.md.
"""

from qiao.core.formula.checker import Formula, check
from qiao.core.formula.errors import (
    FormulaError,
    FormulaEvaluationError,
    FormulaSyntaxError,
    FormulaTypeError,
    NotCompilable,
    Position,
)
from qiao.core.formula.evaluator import Clock, evaluate
from qiao.core.formula.sql import compile_formula
from qiao.core.formula.types import FieldInfo, FormulaType, Kind, Resolver, decimal_type

__all__ = [
    "Clock",
    "FieldInfo",
    "Formula",
    "FormulaError",
    "FormulaEvaluationError",
    "FormulaSyntaxError",
    "FormulaType",
    "FormulaTypeError",
    "Kind",
    "NotCompilable",
    "Position",
    "Resolver",
    "check",
    "compile_formula",
    "decimal_type",
    "evaluate",
]
