"""Filters, order and keyset cursors compiled to SQL, for every reader.

The GraphQL compiler and the records service's ``list`` both build their WHERE
and ORDER BY clauses here, so a filter means the same thing through every door.
It sits below formula and permissions, whose rollups and role scopes are filters too.
Filters use snake_case field names; the GraphQL layer translates its camelCase
names before calling in. The filter language is documented in docs/graphql.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Table, and_, false, not_, or_, select, true

from qiao.core.errors import BadUserInput
from qiao.core.ids import is_record_id
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label
from qiao.core.metadata.values import coerce_for_query, to_json

#: The ids of the rows whose encrypted field holds one of the values: (table, entity name,
#: field, values) -> ids. Found through the blind index and confirmed by opening each
#: candidate's value (qiao.core.encryption.FieldEncryption.matching), so a forged or
#: colliding index never matches.
BlindMatch = Callable[[Any, str, FieldDef, Sequence[Any]], Sequence[str]]


class ComputedSql(Protocol):
    """The SQL of an entity's computed fields by name.

    :class:`qiao.core.formula.columns.ComputedColumns` is one; formula fields are
    compiled above this module, which only asks for the column of a name.
    """

    def column(self, name: str) -> ColumnElement[Any]: ...


class RelationTables(Protocol):
    """What a filter needs to follow relations: entities, their tables and reverse sides.

    :class:`qiao.core.catalog.Catalog` is one. Only role scopes pass it (docs/permissions.md,
    "Scopes through relations"): a client's filters stay on the entity's own fields, so they
    cannot probe records the caller may not read.
    """

    def entity(self, name: str) -> EntityDef: ...

    def table(self, name: str) -> Table: ...

    def reverse_relation(self, entity: str, name: str) -> tuple[str, FieldDef] | None: ...


MAX_FILTER_CONDITIONS = 200
MAX_FILTER_DEPTH = 10
MAX_IN_VALUES = 1000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_ORDERED_TYPES = frozenset(FieldType) - {FieldType.JSON}
_TEXT_TYPES = frozenset(
    {FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL}
)


def _system_field(name: str, type_: FieldType) -> FieldDef:
    # System columns bypass the name check that keeps declared fields off them.
    return FieldDef.model_construct(
        name=name, type=type_, label=Label(en=name), required=True, target=None
    )


ID_FIELD = _system_field("id", FieldType.RELATION)
SYSTEM_QUERY_FIELDS = {
    "id": ID_FIELD,
    "created_at": _system_field("created_at", FieldType.DATETIME),
    "updated_at": _system_field("updated_at", FieldType.DATETIME),
}


def queryable_fields(entity: EntityDef) -> dict[str, FieldDef]:
    """Fields a filter or order may name, by column name (``account_id`` for relations)."""
    fields = dict(SYSTEM_QUERY_FIELDS)
    fields.update({f.column: f for f in entity.fields if not f.write_only})
    return fields


# -- Filters ---------------------------------------------------------------------------

_OPERATORS = {
    "eq",
    "neq",
    "in",
    "nin",
    "lt",
    "lte",
    "gt",
    "gte",
    "contains",
    "starts_with",
    "is_null",
}
_RANGE_OPS = {"lt", "lte", "gt", "gte"}
_TEXT_OPS = {"contains", "starts_with"}


def operators_for(field: FieldDef) -> list[str]:
    """The filter operators that make sense for a field's type, in documentation order."""
    if field.type is FieldType.JSON:
        return ["is_null"]
    ops = ["eq", "neq", "in", "nin"]
    if field.type not in {FieldType.BOOLEAN, FieldType.ENUM, FieldType.RELATION}:
        ops += ["lt", "lte", "gt", "gte"]
    if field.type in _TEXT_TYPES:
        ops += ["contains", "starts_with"]
    return [*ops, "is_null"]


class _FilterCompiler:
    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        blind: BlindMatch | None = None,
        computed: ComputedSql | None = None,
        relations: RelationTables | None = None,
    ) -> None:
        self.entity = entity
        self.table = table
        self.blind = blind
        self.computed = computed
        self.relations = relations
        self.fields = queryable_fields(entity)
        self.count = 0

    def compile(self, spec: Mapping[str, Any], depth: int) -> ColumnElement[bool]:
        if depth > MAX_FILTER_DEPTH:
            raise BadUserInput(
                f"filters nest at most {MAX_FILTER_DEPTH} levels deep", field="filter"
            )
        if not isinstance(spec, Mapping):
            raise BadUserInput("a filter is an object of field conditions", field="filter")
        parts: list[ColumnElement[bool]] = []
        for key, value in spec.items():
            if value is None:
                continue
            if key in {"and", "or"}:
                if not isinstance(value, Sequence) or isinstance(value, str):
                    raise BadUserInput(f"'{key}' takes a list of filters", field=key)
                inner = [self.compile(v, depth + 1) for v in value]
                if inner:
                    parts.append(and_(*inner) if key == "and" else or_(*inner))
            elif key == "not":
                parts.append(not_(self.compile(value, depth + 1)))
            elif key not in self.fields and self.relations is not None:
                parts.append(self.relation_condition(key, value, depth))
            else:
                parts.append(self.field_condition(key, value))
        return and_(true(), *parts) if parts else true()

    def relation_condition(self, name: str, spec: Any, depth: int) -> ColumnElement[bool]:
        """A filter on related records, as ``IN (SELECT ...)`` over an alias of their table.

        ``{"matter": {...}}`` (a many-to-one relation) holds when the record's matter matches;
        ``{"members": {...}}`` (a reverse relation) when at least one member matches. The
        subquery's table is a fresh alias, so it never correlates with the reader's own joins.
        """
        assert self.relations is not None
        field = self.entity.field(name)
        if field is not None and field.type is FieldType.RELATION and field.target:
            target = self.relations.entity(field.target)
            alias = self.relations.table(field.target).alias()
            inner = self._nested(target, alias, spec, depth)
            return self.table.c[field.column].in_(select(alias.c.id).where(inner))
        reverse = self.relations.reverse_relation(self.entity.name, name)
        if reverse is None:
            raise BadUserInput(f"{self.entity.name} has no field {name!r} to filter on", field=name)
        child_name, link = reverse
        child = self.relations.entity(child_name)
        alias = self.relations.table(child_name).alias()
        inner = self._nested(child, alias, spec, depth)
        return self.table.c.id.in_(select(alias.c[link.column]).where(inner))

    def _nested(self, entity: EntityDef, table: Any, spec: Any, depth: int) -> ColumnElement[bool]:
        nested = _FilterCompiler(entity, table, relations=self.relations)
        nested.count = self.count
        condition = nested.compile(spec, depth + 1)
        self.count = nested.count
        return condition

    def field_condition(self, name: str, ops: Any) -> ColumnElement[bool]:
        field = self.fields.get(name)
        if field is None:
            raise BadUserInput(f"{self.entity.name} has no field {name!r} to filter on", field=name)
        if not isinstance(ops, Mapping):
            raise BadUserInput("a field filter is an object of operators", field=name)
        if field.encrypted:
            return self.encrypted_condition(field, name, ops)
        column = computed_or_column(self.table, field, name, self.computed)
        allowed = operators_for(field)
        conditions: list[ColumnElement[bool]] = []
        for op, value in self._counted(ops):
            if op not in _OPERATORS:
                raise BadUserInput(f"unknown filter operator {op!r}", field=name)
            if op not in allowed:
                raise BadUserInput(
                    f"operator {op!r} does not apply to {field.type.value} field {name!r}; "
                    f"use one of {', '.join(allowed)}",
                    field=name,
                )
            conditions.append(self.operator(field, name, column, op, value))
        return and_(true(), *conditions)

    def _counted(self, ops: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """The operators that apply (a null value means "not given"), within the limit."""
        for op, value in ops.items():
            if value is None and op != "is_null":
                continue
            self.count += 1
            if self.count > MAX_FILTER_CONDITIONS:
                raise BadUserInput(
                    f"a filter has at most {MAX_FILTER_CONDITIONS} conditions", field="filter"
                )
            yield op, value

    def encrypted_condition(
        self, field: FieldDef, name: str, ops: Mapping[str, Any]
    ) -> ColumnElement[bool]:
        """``eq``/``in`` through the blind index; the database cannot compare sealed values.

        The condition is on ids: those of the rows the blind index finds whose opened
        value is confirmed equal, so it composes with ``or``, ``not`` and counts.
        """
        conditions: list[ColumnElement[bool]] = []
        for op, value in self._counted(ops):
            if op == "is_null":
                conditions.append(self.operator(field, name, self.table.c[name], op, value))
                continue
            if op not in {"eq", "in"} or not field.searchable or self.blind is None:
                how = (
                    "only eq and in work, through its blind index"
                    if field.searchable
                    else "declare it searchable: exact to look values up with eq and in"
                )
                raise BadUserInput(
                    f"operator {op!r} does not apply to {name!r}: it is stored encrypted, so "
                    f"the database cannot compare its values; {how}",
                    field=name,
                )
            values = value if op == "in" else [value]
            if not isinstance(values, Sequence) or isinstance(values, str):
                raise BadUserInput(f"{op} takes a list", field=name)
            if len(values) > MAX_IN_VALUES:
                raise BadUserInput(f"{op} takes at most {MAX_IN_VALUES} values", field=name)
            sought = [self.value(field, name, v) for v in values]
            ids = self.blind(self.table, self.entity.name, field, sought) if sought else []
            conditions.append(self.table.c.id.in_(sorted(ids)) if ids else false())
        return and_(true(), *conditions)

    def operator(
        self, field: FieldDef, name: str, column: Any, op: str, value: Any
    ) -> ColumnElement[bool]:
        if op == "is_null":
            if not isinstance(value, bool):
                raise BadUserInput("isNull takes true or false", field=name)
            return column.is_(None) if value else column.is_not(None)
        if op in _TEXT_OPS:
            if not isinstance(value, str):
                raise BadUserInput(f"{op} takes text", field=name)
            if op == "contains":
                return column.icontains(value, autoescape=True)
            return column.istartswith(value, autoescape=True)
        if op in {"in", "nin"}:
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise BadUserInput(f"{op} takes a list", field=name)
            if len(value) > MAX_IN_VALUES:
                raise BadUserInput(f"{op} takes at most {MAX_IN_VALUES} values", field=name)
            values = [self.value(field, name, v) for v in value]
            if op == "in":
                return column.in_(values) if values else false()
            return or_(column.not_in(values), column.is_(None)) if values else true()
        checked = self.value(field, name, value)
        match op:
            case "eq":
                return column == checked
            case "neq":
                return or_(column != checked, column.is_(None))
            case "lt":
                return column < checked
            case "lte":
                return column <= checked
            case "gt":
                return column > checked
            case _:
                return column >= checked

    def value(self, field: FieldDef, name: str, value: Any) -> Any:
        if field is ID_FIELD or field.type is FieldType.RELATION:
            if not is_record_id(value):
                raise BadUserInput(f"{value!r} is not a record id", field=name)
            return value
        try:
            return coerce_for_query(field, value)
        except ValueError as exc:
            raise BadUserInput(f"{name}: {exc}", field=name) from None


def compile_filter(
    entity: EntityDef,
    table: Table,
    spec: Mapping[str, Any] | None,
    *,
    blind: BlindMatch | None = None,
    computed: ComputedSql | None = None,
    relations: RelationTables | None = None,
) -> ColumnElement[bool]:
    """The WHERE condition for a filter (``None`` or ``{}`` matches every row).

    ``blind`` finds rows by value, for ``eq``/``in`` on searchable encrypted fields;
    ``computed`` gives the SQL of formula and rollup fields (without it they are refused);
    ``relations`` lets the filter name relations, both ways, with a filter on the related
    records (role scopes only, see :class:`RelationTables`).
    """
    if not spec:
        return true()
    return _FilterCompiler(entity, table, blind, computed, relations).compile(spec, 1)


def filtered_fields(spec: Any) -> set[str]:
    """Every field name a filter tests (a caller may only filter on fields they can read)."""
    names: set[str] = set()
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key in {"and", "or"}:
                for item in value or ():
                    names |= filtered_fields(item)
            elif key == "not":
                names |= filtered_fields(value)
            else:
                names.add(key)
    return names


def computed_or_column(table: Any, field: FieldDef, name: str, computed: ComputedSql | None) -> Any:
    """The column of ``name``, or the SQL of a computed field (BAD_USER_INPUT if it has none)."""
    if not field.computed:
        return table.c[name]
    if computed is None:
        raise BadUserInput(
            f"{name} is computed and cannot be filtered or sorted on here", field=name
        )
    return computed.column(name)


# -- Order and keyset pagination ---------------------------------------------------------


class Direction(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True)
class SortKey:
    column: str
    field: FieldDef
    direction: Direction

    @property
    def nullable(self) -> bool:
        return self.column != "id" and not self.field.required


@dataclass(frozen=True)
class Ordering:
    """A total order: the requested keys, then ``id`` to break ties."""

    entity: str
    keys: tuple[SortKey, ...]

    @property
    def signature(self) -> str:
        text = self.entity + "|" + ",".join(f"{k.column}:{k.direction}" for k in self.keys)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def reversed(self) -> Ordering:
        flip = {Direction.ASC: Direction.DESC, Direction.DESC: Direction.ASC}
        return Ordering(
            self.entity, tuple(SortKey(k.column, k.field, flip[k.direction]) for k in self.keys)
        )

    def clauses(
        self, table: Table, computed: ComputedSql | None = None
    ) -> list[ColumnElement[Any]]:
        """ORDER BY terms; NULLs sort last ascending, first descending, on every database.

        ``computed`` gives the SQL of formula and rollup fields over ``table``.
        """
        terms: list[ColumnElement[Any]] = []
        for key in self.keys:
            column = computed_or_column(table, key.field, key.column, computed)
            if key.nullable:
                null_first = column.is_(None)
                terms.append(null_first.desc() if key.direction is Direction.DESC else null_first)
            terms.append(column.desc() if key.direction is Direction.DESC else column.asc())
        return terms

    def after(
        self, table: Table, values: Sequence[Any], computed: ComputedSql | None = None
    ) -> ColumnElement[bool]:
        """Rows strictly after the row whose sort values are ``values``.

        With more than one key, the first key's bound is repeated outside the
        alternatives (``occurred_at <= v AND (occurred_at < v OR ...)``): the
        same rows, but PostgreSQL can then start an index scan at the cursor
        rather than read, filter and sort every row before it.
        """
        alternatives: list[ColumnElement[bool]] = []
        equal: list[ColumnElement[bool]] = []
        for key, value in zip(self.keys, values, strict=True):
            column = computed_or_column(table, key.field, key.column, computed)
            alternatives.append(and_(true(), *equal, _beyond(key, column, value)))
            equal.append(column.is_(None) if value is None else column == value)
        first, value = self.keys[0], values[0]
        if len(self.keys) == 1 or first.nullable or value is None:
            return or_(*alternatives)
        column = computed_or_column(table, first.field, first.column, computed)
        bound = column >= value if first.direction is Direction.ASC else column <= value
        return and_(bound, or_(*alternatives))


def _beyond(key: SortKey, column: Any, value: Any) -> ColumnElement[bool]:
    asc = key.direction is Direction.ASC
    if value is None:
        # Ascending puts NULLs last (nothing beyond them); descending puts them first.
        return false() if asc else column.is_not(None)
    strictly = column > value if asc else column < value
    return or_(strictly, column.is_(None)) if (asc and key.nullable) else strictly


def make_ordering(entity: EntityDef, order_by: Sequence[Mapping[str, Any]] | None) -> Ordering:
    """Validate ``[{field, direction}]`` (snake_case column names) into a total order."""
    fields = queryable_fields(entity)
    keys: list[SortKey] = []
    for item in order_by or ():
        name = item.get("field")
        direction = item.get("direction") or Direction.ASC
        field = fields.get(name) if isinstance(name, str) else None
        if field is None or field.type not in _ORDERED_TYPES:
            raise BadUserInput(f"cannot order {entity.name} by {name!r}", field=str(name))
        if field.encrypted:
            raise BadUserInput(
                f"cannot order {entity.name} by {name!r}: it is stored encrypted, so the "
                "database cannot compare its values",
                field=str(name),
            )
        try:
            direction = Direction(str(getattr(direction, "value", direction)).upper())
        except ValueError:
            raise BadUserInput(
                f"direction must be ASC or DESC, not {direction!r}", field="direction"
            ) from None
        if any(k.column == name for k in keys):
            raise BadUserInput(f"{name!r} appears twice in orderBy", field=name)
        keys.append(SortKey(name, field, direction))
    if not any(k.column == "id" for k in keys):
        keys.append(SortKey("id", ID_FIELD, Direction.ASC))
    return Ordering(entity.name, tuple(keys))


def encode_cursor(ordering: Ordering, row: Mapping[str, Any]) -> str:
    """An opaque cursor for ``row`` (stored values by column) under ``ordering``."""
    values = [to_json(k.field, row[k.column]) for k in ordering.keys]
    return encode_cursor_values(ordering.signature, values)


def encode_cursor_values(signature: str, values: Sequence[Any]) -> str:
    raw = json.dumps([signature, *values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(ordering: Ordering, cursor: str, argument: str = "after") -> list[Any]:
    """The stored sort values a cursor names, or BAD_USER_INPUT (on ``argument``, the
    connection argument it came in) if it is not ours."""
    try:
        if cursor.startswith("x"):
            raw = bytes.fromhex(cursor[1:])
        else:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, TypeError):
        raise BadUserInput(
            "malformed cursor; use a cursor returned by this query", field=argument
        ) from None
    if not isinstance(data, list) or not data:
        raise BadUserInput("malformed cursor; use a cursor returned by this query", field=argument)
    if data[0] != ordering.signature:
        raise BadUserInput(
            "this cursor belongs to another query order; start again", field=argument
        )
    if len(data) != len(ordering.keys) + 1:
        raise BadUserInput("malformed cursor; use a cursor returned by this query", field=argument)
    values = []
    for key, value in zip(ordering.keys, data[1:], strict=True):
        if value is None:
            if not key.nullable:
                raise BadUserInput(
                    "malformed cursor; use a cursor returned by this query", field=argument
                )
            values.append(None)
            continue
        try:
            values.append(_cursor_value(key.field, value))
        except ValueError:
            raise BadUserInput(
                "malformed cursor; use a cursor returned by this query", field=argument
            ) from None
    return values


def _cursor_value(field: FieldDef, value: Any) -> Any:
    if field is ID_FIELD or field.type is FieldType.RELATION:
        if not is_record_id(value):
            raise ValueError("not an id")
        return value
    if field.type is FieldType.BOOLEAN and isinstance(value, int) and not isinstance(value, bool):
        return bool(value)
    return coerce_for_query(field, value)


#: A page-info flag: a Python bool, or the SQL condition a compiled read computes it with.
_Flag = TypeVar("_Flag")


@dataclass(frozen=True)
class Window:
    """One page request of a Relay connection: the paginator of every list in Qiao.

    The records service and the compiled GraphQL reads both take their page
    size, walking order, cursor and page-info rule from here, so a page and
    its ``hasNextPage``/``hasPreviousPage`` mean the same on either path. A
    backward page (``last``/``before``) walks the order reversed and is put
    back in display order by the caller.
    """

    ordering: Ordering
    size: int
    backwards: bool
    #: The sort values of the row the page starts beyond, or None for the first page.
    cursor: list[Any] | None

    @classmethod
    def of(
        cls,
        entity: EntityDef,
        order_by: Sequence[Mapping[str, Any]] | None,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Window:
        """Check the arguments of a connection field (docs/graphql.md) into a window."""
        size = page_size(first, last)
        return cls.over(
            make_ordering(entity, order_by), size, after=after, last=last, before=before
        )

    @classmethod
    def over(
        cls,
        ordering: Ordering,
        size: int,
        *,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Window:
        """A window in an order made elsewhere: lists that are not records of an entity
        (the audit trail) page with the same cursors and page-info rule."""
        backwards = last is not None
        if backwards and after is not None:
            raise BadUserInput("page backward with last and before, not after", field="after")
        if not backwards and before is not None:
            raise BadUserInput("page forward with first and after, not before", field="before")
        cursor, argument = (before, "before") if backwards else (after, "after")
        values = decode_cursor(ordering, cursor, argument) if cursor is not None else None
        return cls(ordering, size, backwards, values)

    @property
    def walk(self) -> Ordering:
        """The order rows are read in: the requested one, reversed for a backward page."""
        return self.ordering.reversed() if self.backwards else self.ordering

    def beyond(self, table: Table, computed: ComputedSql | None = None) -> ColumnElement[bool]:
        """Rows past the cursor in walking order (every row on the first page)."""
        if self.cursor is None:
            return true()
        return self.walk.after(table, self.cursor, computed)

    def behind(self, table: Table, computed: ComputedSql | None = None) -> ColumnElement[bool]:
        """Rows on the other side of the cursor: what a page in the opposite direction shows."""
        if self.cursor is None:
            return false()
        return not_(self.walk.after(table, self.cursor, computed))

    def page_info(self, *, overflow: _Flag, behind: _Flag) -> tuple[_Flag, _Flag]:
        """``(hasNextPage, hasPreviousPage)`` from whether rows remain past the page in
        walking order (``overflow``) and whether any lie behind the cursor (``behind``)."""
        if self.backwards:
            return behind, overflow
        return overflow, behind


def page_size(first: int | None, last: int | None) -> int:
    """The requested page size, checked against the limits of docs/graphql.md."""
    if first is not None and last is not None:
        raise BadUserInput("use either first or last, not both", field="last")
    size = first if first is not None else last
    if size is None:
        return DEFAULT_PAGE_SIZE
    if size < 0:
        raise BadUserInput(
            "page size cannot be negative", field="first" if first is not None else "last"
        )
    if size > MAX_PAGE_SIZE:
        raise BadUserInput(
            f"page size {size} exceeds the maximum of {MAX_PAGE_SIZE}; paginate with cursors",
            field="first" if first is not None else "last",
        )
    return size
