"""The declaration of a rollup field: which children it aggregates, and how.

Part of the field model, which checks it when a field is declared; what a
rollup needs from the other entities and how it becomes SQL is the formula
package's (:mod:`qiao.core.formula.rollup`).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qiao.core.metadata.fieldtypes import MAX_DECIMAL_PRECISION

Function = Literal["count", "count_distinct", "sum", "min", "max", "avg"]
ParentOperator = Literal["eq", "neq", "lt", "lte", "gt", "gte"]


class RollupSpec(BaseModel):
    """``{function: sum, entity: purchase, link: dealer, field: amount, filter: {...}}``.

    ``link`` is the child's relation field pointing at the parent; with ``via``, it
    points where the parent's relation ``via`` points instead, so a dealer's quarter
    (``via: dealer``) rolls up the purchase lines of its dealer. ``field`` is the child
    field aggregated (none for COUNT); ``filter`` a list-query filter on the children.
    ``parent_filter`` compares children's fields with the parent's own, for rollups
    over a window the parent defines: ``{ordered_on: {gte: period_start, lte:
    period_end}}`` keeps the children ordered within the parent's period.
    ``precision`` is the number of digits a SUM may reach, scale included, as a
    decimal field declares it. SQLite stops a query whose sum exceeds it, and the
    formula compiler relies on it to prove SQLite arithmetic over the sum exact:
    the smaller it is, the more formulas over the rollup compile to SQLite SQL.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: Function
    entity: str
    link: str
    via: str | None = None
    field: str | None = None
    filter: dict[str, Any] | None = None
    parent_filter: dict[str, dict[ParentOperator, str]] | None = None
    precision: int = Field(default=MAX_DECIMAL_PRECISION, ge=1, le=MAX_DECIMAL_PRECISION)

    @model_validator(mode="after")
    def _field_fits_function(self) -> Self:
        if self.function == "count" and self.field is not None:
            raise ValueError("count counts records; it takes no field")
        if self.function != "count" and self.field is None:
            raise ValueError(f"{self.function} needs the field it aggregates")
        return self
