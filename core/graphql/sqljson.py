"""JSON built by the database, in SQLite's and PostgreSQL's dialects.

The read compiler asks this module for "an object of these keys", "an array of
these rows", "this column in its wire form"; each dialect answers with its own
functions (json_object/json_group_array on SQLite; json_build_object/json_agg
on PostgreSQL). Wire forms match what the API documents: decimals and instants
as strings, booleans as JSON booleans.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.dialects.postgresql import JSON as _JSON
from sqlalchemy.dialects.postgresql import JSONB as _JSONB

from qiao.core.metadata.model import FieldDef, FieldType

_PG_MAX_PAIRS = 50  # json_build_object takes at most 100 arguments


def sql_text(value: str) -> ColumnElement[Any]:
    """A string constant written into the SQL (keys and formats; never user data)."""
    return literal_column("'" + value.replace("'", "''") + "'")


class JsonSQL:
    """Dialect-specific JSON expressions; see :func:`for_dialect`."""

    def object(self, pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
        raise NotImplementedError

    def embed(self, json_expr: Any) -> ColumnElement[Any]:
        """A JSON value that crossed a subquery boundary, embedded as JSON (not text)."""
        raise NotImplementedError

    def array_agg(self, expr: ColumnElement[Any], order: list[Any]) -> ColumnElement[Any]:
        """An array of ``expr`` over the aggregated rows, in ``order``; [] if none."""
        raise NotImplementedError

    def value(self, column: Any, field: FieldDef | None, system: str = "") -> ColumnElement[Any]:
        """A stored column in its wire form."""
        raise NotImplementedError

    def constant(self, value: Any) -> ColumnElement[Any]:
        """``value`` as JSON written into the SQL (a shape such as ``[null, null]``, not data)."""
        raise NotImplementedError

    def listed_ids(self, ids: list[str]) -> FromClause:
        """Record ids as rows (``id``, ``position``) in their order, from one parameter.

        ``id`` compares with id columns as they are (a cast would cost their index).
        Joined to and aggregated over with ``array_agg(..., [position])``, the rows
        keep their order on SQLite too, whose aggregates take rows as they arrive.
        """
        raise NotImplementedError

    def boolean(self, condition: ColumnElement[bool]) -> ColumnElement[Any]:
        raise NotImplementedError

    def cursor(self, signature: str, keys: list[ColumnElement[Any]]) -> ColumnElement[Any]:
        raise NotImplementedError

    def as_text(self, json_expr: Any) -> ColumnElement[Any]:
        return json_expr


class SqliteJson(JsonSQL):
    def object(self, pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
        args: list[Any] = []
        for key, value in pairs:
            args += [sql_text(key), value]
        return func.json_object(*args)

    def embed(self, json_expr: Any) -> ColumnElement[Any]:
        return func.json(json_expr)

    def array_agg(self, expr: ColumnElement[Any], order: list[Any]) -> ColumnElement[Any]:
        # SQLite 3.40 has no ORDER BY in aggregates: rows arrive in the order of the
        # (ORDER BY ... LIMIT) subquery the caller aggregates over.
        return func.json_group_array(expr)

    def value(self, column: Any, field: FieldDef | None, system: str = "") -> ColumnElement[Any]:
        kind = field.type if field is not None else None
        if kind is FieldType.BOOLEAN:
            return self.boolean(column)
        if kind is FieldType.DECIMAL:
            assert field is not None
            scale = field.effective_scale
            if scale == 0:
                return cast(column, String)
            unit = 10**scale
            sign = case((column < 0, sql_text("-")), else_=sql_text(""))
            # ``op("/")``: SQLAlchemy's ``/`` divides as floats, which loses digits past 2**53.
            whole = func.abs(column).op("/", return_type=Integer)(unit)
            text = func.printf(sql_text(f"%s%d.%0{scale}d"), sign, whole, func.abs(column) % unit)
            return case((column.is_(None), None), else_=text)
        if kind is FieldType.JSON:
            return func.json(column)
        return column

    def constant(self, value: Any) -> ColumnElement[Any]:
        return func.json(sql_text(json.dumps(value)))

    def listed_ids(self, ids: list[str]) -> FromClause:
        each = func.json_each(literal(json.dumps(ids), String)).table_valued("key", "value")
        # A LIMIT keeps the ORDER BY of a subquery SQLite would otherwise flatten.
        rows = select(each.c.value.label("id"), each.c.key.label("position"))
        return rows.order_by(each.c.key).limit(len(ids)).subquery()

    def boolean(self, condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return case(
            (condition.is_(None), None),
            (condition, func.json(sql_text("true"))),
            else_=func.json(sql_text("false")),
        )

    def cursor(self, signature: str, keys: list[ColumnElement[Any]]) -> ColumnElement[Any]:
        return sql_text("x").concat(func.hex(func.json_array(sql_text(signature), *keys)))


class PostgresJson(JsonSQL):
    def object(self, pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
        chunks = [pairs[i : i + _PG_MAX_PAIRS] for i in range(0, len(pairs), _PG_MAX_PAIRS)]
        built = [func.json_build_object(*_flatten(chunk)) for chunk in chunks or [[]]]
        if len(built) == 1:
            return built[0]
        merged = cast(built[0], _JSONB)
        for more in built[1:]:
            merged = merged.op("||")(cast(more, _JSONB))
        return cast(merged, _JSON)

    def embed(self, json_expr: Any) -> ColumnElement[Any]:
        return json_expr

    def array_agg(self, expr: ColumnElement[Any], order: list[Any]) -> ColumnElement[Any]:
        agg = func.json_agg(aggregate_order_by(expr, *order))
        return func.coalesce(agg, cast(sql_text("[]"), _JSON))

    def value(self, column: Any, field: FieldDef | None, system: str = "") -> ColumnElement[Any]:
        kind = field.type if field is not None else None
        if kind is FieldType.DECIMAL:
            return cast(column, String)
        if kind is FieldType.DATETIME or system in {"created_at", "updated_at"}:
            return func.to_char(
                func.timezone(sql_text("UTC"), column),
                sql_text('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
            )
        if kind is FieldType.DATE:
            return func.to_char(column, sql_text("YYYY-MM-DD"))
        return column

    def constant(self, value: Any) -> ColumnElement[Any]:
        return cast(sql_text(json.dumps(value)), _JSON)

    def listed_ids(self, ids: list[str]) -> FromClause:
        return (
            func.unnest(literal(ids, ARRAY(UUID(as_uuid=False))))
            .table_valued("id", with_ordinality="position")
            .render_derived()
        )

    def boolean(self, condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return condition

    def cursor(self, signature: str, keys: list[ColumnElement[Any]]) -> ColumnElement[Any]:
        text = cast(func.json_build_array(sql_text(signature), *keys), String)
        return sql_text("x").concat(
            func.encode(func.convert_to(text, sql_text("UTF8")), sql_text("hex"))
        )

    def as_text(self, json_expr: Any) -> ColumnElement[Any]:
        return cast(json_expr, String)


def _flatten(pairs: list[tuple[str, ColumnElement[Any]]]) -> list[Any]:
    args: list[Any] = []
    for key, value in pairs:
        args += [sql_text(key), value]
    return args


def for_dialect(name: str) -> JsonSQL:
    return PostgresJson() if name == "postgresql" else SqliteJson()
