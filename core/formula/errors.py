"""Errors of the formula language, each pointing at the place in the formula it concerns.

A formula is typed by an admin into a form or a manifest; an error that says
"line 1, column 12" and shows the formula with a caret under the culprit lets
them fix it without guessing. Definition-time errors (syntax, types) and
evaluation-time errors share :class:`FormulaError`, so callers catch one class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Where a piece of a formula starts: 1-based line and column, as editors count."""

    line: int
    column: int


class FormulaError(Exception):
    """A formula that cannot be parsed, typed, evaluated or compiled, with its position."""

    def __init__(self, message: str, position: Position | None = None, source: str = "") -> None:
        self.message = message
        self.position = position
        self.source = source
        super().__init__(self.describe())

    def describe(self) -> str:
        """The message, prefixed with its position and followed by a caret excerpt."""
        if self.position is None:
            return self.message
        where = f"line {self.position.line}, column {self.position.column}: {self.message}"
        lines = self.source.splitlines()
        if not 0 < self.position.line <= len(lines):
            return where
        text = lines[self.position.line - 1]
        caret = " " * (self.position.column - 1) + "^"
        return f"{where}\n  {text}\n  {caret}"

    def located(self, source: str) -> FormulaError:
        """The same error with the formula text attached, for the caret excerpt."""
        return type(self)(self.message, self.position, source)


class FormulaSyntaxError(FormulaError):
    """The text is not a formula: a stray character, an unclosed parenthesis."""


class FormulaTypeError(FormulaError):
    """The formula is well formed but means nothing: unknown field, text plus a number."""


class FormulaEvaluationError(FormulaError):
    """A value the formula cannot compute from this record, such as a date past year 9999."""


class NotCompilable(FormulaError):
    """The formula cannot be computed exactly in this database's SQL; evaluate it in Python."""
