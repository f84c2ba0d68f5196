"""Formula fields the database cannot compute exactly, filled in after a compiled read ran.

On SQLite a formula over wide decimals may not compile (docs/formulas.md). A
compiled read then selects a marker in its place, ``<marker><entity>:<field>:<id>``,
and the values are evaluated in Python from the stored record once the
statement returned, much as encrypted fields are opened.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, cast, literal

from qiao.core.catalog import Catalog
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.evaluator import Clock
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.formula.scope import RowScope
from qiao.core.metadata.values import to_json

#: Starts a marker; a record separator and a name no stored text begins with.
MARKER = "\x1eqiao-formula:"


def marked(entity: str, field: str, table: Any) -> ColumnElement[Any]:
    """SQL text marking ``field`` of the row of ``table`` for evaluation after the query."""
    return literal(f"{MARKER}{entity}:{field}:", String) + cast(table.c.id, String)


class Evaluator:
    """Replaces the markers in a compiled read's JSON with the formulas' values."""

    def __init__(
        self, conn: Connection, catalog: Catalog, clock: Clock, scope: RowScope | None
    ) -> None:
        self.conn = conn
        self.catalog = catalog
        self.clock = clock
        #: The reader's row rules, which related records the formulas read obey.
        self.scope = scope

    def fill_text(self, text: str | None) -> str | None:
        # The database's JSON may escape the marker's control character; look for its name.
        if text is None or MARKER[1:] not in text:
            return text
        return json.dumps(self.fill(json.loads(text)), ensure_ascii=False)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._value(value) if value.startswith(MARKER) else value
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    def _value(self, mark: str) -> Any:
        entity, name, record_id = mark[len(MARKER) :].split(":", 2)
        table = self.catalog.table(entity)
        row = self.conn.execute(table.select().where(table.c.id == record_id)).first()
        if row is None:
            return None
        computed = computed_fields(self.catalog.registry).field(entity, name)
        assert computed.formula is not None
        value = evaluate_on_record(
            self.conn,
            self.catalog,
            entity,
            dict(row._mapping),
            computed.formula,
            self.clock,
            scope=None if computed.field.system_computed else self.scope,
        )
        return to_json(computed.field, value)
