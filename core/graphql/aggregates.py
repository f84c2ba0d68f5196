"""Aggregates per entity: ``<entity>Aggregate`` groups records and sums, counts, averages.

``opportunityAggregate(filter:, groupBy:, having:, orderBy:, first:)`` answers a list of
groups, each with its ``key`` and the aggregates asked for (docs/graphql.md#aggregates).
The schema side (:class:`AggregateTypes`) makes each entity's types next to the
generated ones; the SQL side (:func:`compile_aggregate`) is one more kind of root field
for the read compiler, so an aggregate is part of the query's one statement:

    SELECT json_agg(group JSON) FROM (
        SELECT * FROM (SELECT keys, aggregates FROM t WHERE filter AND row rule GROUP BY keys)
        WHERE having ORDER BY ... LIMIT n
    ) LEFT JOIN related records of to-one keys (under their own row rules)

The rows counted are exactly those the caller's ``<entities>`` list would return: the
same filter compiler and the same row rule (``ReadCompiler.readable``). A field the
caller cannot read in clear cannot be aggregated, grouped or filtered on (FORBIDDEN);
grouping by a time bucket uses the deployment's time zone (the formula clock's).
"""

from __future__ import annotations

import datetime as dt
import enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import strawberry
from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    null,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import UnaryExpression

from qiao.core import query
from qiao.core.errors import BadUserInput
from qiao.core.graphql import scalars
from qiao.core.graphql.compiler import Fields, Joins, enum_column, inline, outer_joined
from qiao.core.graphql.names import enum_name
from qiao.core.graphql.parts import (
    OrderDirection,
    describe,
    field_label,
    field_resolver,
    from_key,
    make_class,
)
from qiao.core.graphql.plan import RootAggregate
from qiao.core.graphql.sqljson import sql_text
from qiao.core.graphql.withheld import EACH, Step
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label
from qiao.core.metadata.registry import camel, type_name
from qiao.core.storage.types import ExactDecimal, utc_text

if TYPE_CHECKING:
    from qiao.core.graphql.builder import SchemaBuilder
    from qiao.core.graphql.compiler import ReadCompiler

#: Groups one aggregate answers by default, and at most.
DEFAULT_GROUPS = 100
MAX_GROUPS = 1000
#: Extra decimal places of an average over its field's scale (an integer's average has 2).
AVERAGE_PLACES = 2

_NUMBERS = {FieldType.INTEGER, FieldType.DECIMAL}
_TIMES = {FieldType.DATE, FieldType.DATETIME}


@strawberry.enum(description="A span of time that date and date-time keys are grouped by.")
class TimeBucket(enum.Enum):
    DAY = strawberry.enum_value("DAY", description="The calendar day.")
    WEEK = strawberry.enum_value("WEEK", description="The week, starting on Monday.")
    MONTH = strawberry.enum_value("MONTH", description="The calendar month.")
    QUARTER = strawberry.enum_value("QUARTER", description="The quarter (January, April ...).")
    YEAR = strawberry.enum_value("YEAR", description="The calendar year.")


@strawberry.enum(description="What is computed over the records of each group.")
class AggregateFunction(enum.Enum):
    COUNT = strawberry.enum_value("count", description="How many records (no field).")
    COUNT_DISTINCT = strawberry.enum_value(
        "count_distinct", description="How many different non-empty values of the field."
    )
    SUM = strawberry.enum_value("sum", description="The sum of a number field.")
    AVG = strawberry.enum_value("avg", description="The average of a number field.")
    MIN = strawberry.enum_value("min", description="The smallest value of a number or date.")
    MAX = strawberry.enum_value("max", description="The largest value of a number or date.")


#: What each function's output object is called after the entity's type name.
_OUTPUTS = {
    "count_distinct": "CountDistinct",
    "sum": "Sums",
    "avg": "Averages",
    "min": "Minima",
    "max": "Maxima",
}
#: How a group's field of each function's output object is described.
_OUTPUT_TEXTS = {
    "count_distinct": "How many different values of each field the group has.",
    "sum": "Sums of number fields.",
    "avg": "Averages of number fields.",
    "min": "Smallest values.",
    "max": "Largest values.",
}


def groupable(entity: EntityDef) -> dict[str, FieldDef]:
    """Columns an entity's records can be grouped and counted by (JSON cannot)."""
    return {
        c: f
        for c, f in query.queryable_fields(entity).items()
        if f.type is not FieldType.JSON and not f.encrypted
    }


def aggregatable(entity: EntityDef, function: str) -> dict[str, FieldDef]:
    """The columns ``function`` applies to: sums and averages numbers, min and max dates too."""
    fields = groupable(entity)
    if function == "count_distinct":
        return fields
    kinds = _NUMBERS if function in {"sum", "avg"} else _NUMBERS | _TIMES
    return {c: f for c, f in fields.items() if f.type in kinds}


def _synthetic(name: str, kind: FieldType, scale: int | None = None) -> FieldDef:
    """A field of the grouped rows (an aggregate's value), typed for filters and wire forms."""
    return FieldDef.model_construct(
        name=name,
        type=kind,
        label=Label(en=name),
        precision=None,
        scale=scale,
        target=None,
        encrypted=False,
        write_only=False,
        formula=None,
        rollup=None,
    )


def result_field(function: str, name: str, field: FieldDef | None) -> FieldDef:
    """The type of ``function`` over ``field``: counts are integers, sums and averages exact
    decimals (an integer's sum too, as it may pass 32 bits), min and max the field's own."""
    if function in {"count", "count_distinct"}:
        return _synthetic(name, FieldType.INTEGER)
    assert field is not None
    scale = field.effective_scale if field.type is FieldType.DECIMAL else 0
    if function == "sum":
        return _synthetic(name, FieldType.DECIMAL, scale)
    if function == "avg":
        return _synthetic(name, FieldType.DECIMAL, scale + AVERAGE_PLACES)
    return field


# -- Schema -----------------------------------------------------------------------------


class AggregateTypes:
    """Makes ``<entity>Aggregate`` and its types with a schema builder's helpers."""

    def __init__(self, builder: SchemaBuilder) -> None:
        self.builder = builder

    def _object(self, name: str, fields: dict[str, tuple[Any, str]], text: str) -> type:
        cls = make_class(name, {}, {})
        annotations = {}
        for py_name, (annotation, description) in fields.items():
            annotations[py_name] = annotation
            setattr(
                cls,
                py_name,
                strawberry.field(
                    resolver=field_resolver(from_key, {}, annotation, root=True),
                    description=description,
                ),
            )
        cls.__annotations__ = annotations
        return strawberry.type(cls, name=name, description=text)

    def _input(self, name: str, fields: dict[str, tuple[Any, str]], text: str) -> type:
        annotations = {k: annotation for k, (annotation, _) in fields.items()}
        namespace = {
            k: strawberry.field(default=None, description=description)
            for k, (_, description) in fields.items()
        }
        return strawberry.input(
            make_class(name, annotations, namespace), name=name, description=text
        )

    def _enum(self, name: str, fields: dict[str, FieldDef], text: str) -> Any:
        return strawberry.enum(  # type: ignore[call-overload]
            enum.Enum(
                name,
                {
                    enum_name(c): strawberry.enum_value(c, description=_label(c, f))
                    for c, f in fields.items()
                },
            ),
            name=name,
            description=text,
        )

    def _key_type(self, entity: EntityDef) -> type:
        builder = self.builder
        tname = type_name(entity.name)
        fields: dict[str, tuple[Any, str]] = {}
        for column, f in groupable(entity).items():
            if f.type is FieldType.RELATION:
                value: Any = strawberry.ID
            elif f.type in _TIMES:
                value = scalars.Date
            else:
                value = builder.value_type(entity, f)
            fields[column] = (
                value | None,
                f"{_label(column, f)}, when the groups are by it"
                + (" (the first day of its time bucket)" if f.type in _TIMES else ""),
            )
            if f.type is FieldType.RELATION and column != "id":
                assert f.target is not None
                fields[f.name] = (
                    builder.object_type(f.target) | None,
                    f"{describe(f.label, f.name)}, when the groups are by it; null if you "
                    "may not read it",
                )
        return self._object(
            f"{tname}GroupKey",
            fields,
            f"The values a group of {describe(entity.label, tname)} records shares; "
            "only the fields in groupBy may be selected.",
        )

    def _outputs(self, entity: EntityDef) -> dict[str, type]:
        builder = self.builder
        tname = type_name(entity.name)
        label = describe(entity.label, tname)
        texts = {
            "count_distinct": "How many different values each field has in the group.",
            "sum": "The sum of each number field over the group (empty values left out).",
            "avg": f"The average of each number field, rounded half away from zero to "
            f"{AVERAGE_PLACES} places more than the field has.",
            "min": "The smallest value of each field in the group.",
            "max": "The largest value of each field in the group.",
        }
        made = {}
        for function, suffix in _OUTPUTS.items():
            fields = aggregatable(entity, function)
            if not fields:
                continue
            outputs: dict[str, tuple[Any, str]] = {}
            for column, f in fields.items():
                result = result_field(function, column, f)
                if result.type is FieldType.INTEGER and function == "count_distinct":
                    value: Any = int
                else:
                    value = builder.value_type(entity, result) | None
                outputs[column] = (value, _label(column, f))
            made[function] = self._object(
                f"{tname}{suffix}", outputs, f"{texts[function]} ({label})"
            )
        return made

    def _having_type(self, entity: EntityDef) -> type:
        builder = self.builder
        tname = type_name(entity.name)
        name = f"{tname}GroupHaving"
        cls = make_class(name, {}, {})
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {}
        count = builder.field_filter(entity, "count", _synthetic("count", FieldType.INTEGER))
        annotations["count"] = count | None
        namespace["count"] = strawberry.field(
            default=None, description="Conditions on how many records the group has."
        )
        for function, suffix in _OUTPUTS.items():
            fields = aggregatable(entity, function)
            if not fields:
                continue
            inner: dict[str, tuple[Any, str]] = {}
            for column, f in fields.items():
                result = result_field(function, column, f)
                inner[column] = (
                    builder.field_filter(entity, column, result) | None,
                    f"Conditions on {field_label(column, f)}.",
                )
            annotations[function] = (
                self._input(
                    f"{tname}{suffix}Having",
                    inner,
                    f"Conditions on the {function.replace('_', ' ')} of fields; all must hold.",
                )
                | None
            )
            namespace[function] = strawberry.field(
                default=None, description=f"Conditions on the {function.replace('_', ' ')}."
            )
        annotations["and_"] = list[cls] | None  # type: ignore[valid-type]
        namespace["and_"] = strawberry.field(
            default=None, name="and", description="Every one of these holds."
        )
        annotations["or_"] = list[cls] | None  # type: ignore[valid-type]
        namespace["or_"] = strawberry.field(
            default=None, name="or", description="At least one of these holds."
        )
        annotations["not_"] = cls | None
        namespace["not_"] = strawberry.field(
            default=None, name="not", description="This does not hold."
        )
        for key, value in namespace.items():
            setattr(cls, key, value)
        cls.__annotations__ = annotations
        return strawberry.input(
            cls, name=name, description="Which groups to return, by their aggregates."
        )

    def add(self, entity: EntityDef, filter_type: type, ns: dict[str, Any]) -> None:
        """Adds ``<entity>Aggregate`` to the root query namespace ``ns``."""
        builder = self.builder
        tname = type_name(entity.name)
        label = describe(entity.plural_label or entity.label, tname)
        group_field = self._enum(
            f"{tname}GroupField", groupable(entity), f"The fields {label} can be grouped by."
        )
        aggregate_field = self._enum(
            f"{tname}AggregateField",
            groupable(entity),
            f"The fields of {label} an aggregate (other than COUNT) is computed over.",
        )
        group_by = strawberry.input(
            make_class(
                f"{tname}GroupBy",
                {"field": group_field, "bucket": TimeBucket | None},
                {
                    "field": strawberry.field(description="The field whose values form groups."),
                    "bucket": strawberry.field(
                        default=None,
                        description="For a date or date-time: the span it is grouped by, in "
                        "the deployment's time zone (DAY when not given).",
                    ),
                },
            ),
            name=f"{tname}GroupBy",
            description=f"One key {label} are grouped by.",
        )
        order_by = strawberry.input(
            make_class(
                f"{tname}GroupOrderBy",
                {
                    "key": group_field | None,
                    "aggregate": AggregateFunction | None,
                    "field": aggregate_field | None,
                    "direction": OrderDirection,
                },
                {
                    "key": strawberry.field(
                        default=None, description="Sort by this key of the groups (in groupBy)."
                    ),
                    "aggregate": strawberry.field(
                        default=None, description="Sort by this aggregate instead."
                    ),
                    "field": strawberry.field(
                        default=None, description="The aggregate's field (not for COUNT)."
                    ),
                    "direction": strawberry.field(
                        default=OrderDirection.ASC, description="ASC (the default) or DESC."
                    ),
                },
            ),
            name=f"{tname}GroupOrderBy",
            description="One sort key of the groups: a key, or an aggregate; empty values "
            "sort last ascending, first descending.",
        )
        outputs = self._outputs(entity)
        group_fields: dict[str, tuple[Any, str]] = {
            "key": (self._key_type(entity), "The values the group's records share."),
            "count": (int, "How many records the group has."),
        }
        for function, output in outputs.items():
            group_fields[function] = (output, _OUTPUT_TEXTS[function])
        group = self._object(
            f"{tname}Group", group_fields, f"A group of {label} records and its aggregates."
        )
        arguments = {
            "filter": (
                filter_type | None,
                None,
                "Which records are grouped; fields you may not read cannot be used.",
            ),
            "group_by": (
                list[group_by] | None,  # type: ignore[valid-type]
                None,
                "The keys records are grouped by; none: one group of all records.",
            ),
            "having": (self._having_type(entity) | None, None, "Which groups to return."),
            "order_by": (
                list[order_by] | None,  # type: ignore[valid-type]
                None,
                "Sort keys of the groups, most significant first; then the keys ascending.",
            ),
            "first": (
                int | None,
                None,
                f"At most this many groups ({DEFAULT_GROUPS} by default, at most {MAX_GROUPS}).",
            ),
        }
        ns[f"{entity.name}_aggregate"] = strawberry.field(
            resolver=field_resolver(builder.resolvers.read_root, arguments, list[group]),  # type: ignore[valid-type]
            description=f"{label} grouped, with counts, sums, averages, minima and maxima, "
            "under your rules.",
        )
        builder.plan.roots[camel(f"{entity.name}_aggregate")] = RootAggregate(
            entity.name, compile_aggregate
        )


# -- SQL --------------------------------------------------------------------------------


def compile_aggregate(
    compiler: ReadCompiler, entity_name: str, args: dict[str, Any], fields: Fields, key: str
) -> ColumnElement[Any]:
    """The JSON array of groups at response ``key``, as one scalar subquery."""
    return _Aggregate(compiler, entity_name, args, key).compile(fields)


class _Aggregate:
    def __init__(
        self, compiler: ReadCompiler, entity_name: str, args: dict[str, Any], key: str
    ) -> None:
        self.compiler = compiler
        self.entity_name = entity_name
        self.entity = compiler.catalog.entity(entity_name)
        self.args = args
        self.key = key
        self.base = compiler.catalog.table(entity_name).alias()
        self.computed = compiler.computed(entity_name, self.base)
        self.fields = groupable(self.entity)
        self.dialect = compiler.dialect.name
        #: Grouped columns by name (``key__stage``, ``sum__amount`` ...) and their types.
        self.columns: dict[str, ColumnElement[Any]] = {}
        self.types: dict[str, FieldDef] = {}
        #: Group keys: column -> its label in the grouped rows.
        self.keys: dict[str, str] = {}
        #: How many groups at most (``first``).
        self.size = DEFAULT_GROUPS

    # -- Checks ---------------------------------------------------------------------------

    def field(self, column: str, use: str, argument: str) -> FieldDef:
        """The field of ``column`` if the caller may ``use`` it in clear; else an error."""
        field = self.fields.get(column)
        if field is None:
            raise BadUserInput(
                f"{self.entity_name} has no field {column!r} to {use}", field=argument
            )
        if column != "id":
            self.compiler.access.require_clear(self.entity_name, field.name, use)
            self.compiler.require_readable(self.entity_name, field.name)
        return field

    def value(self, column: str, field: FieldDef) -> Any:
        """The column, or a computed field's SQL (BAD_USER_INPUT where it has none)."""
        return query.computed_or_column(self.base, field, column, self.computed)

    # -- Grouped rows ---------------------------------------------------------------------

    def group_key(self, spec: dict[str, Any]) -> None:
        column = spec["field"]
        if column in self.keys:
            raise BadUserInput(f"groupBy names {camel(column)} twice", field="groupBy")
        field = self.field(column, "group by", "groupBy")
        bucket = spec.get("bucket")
        value = self.value(column, field)
        label = f"key__{column}"
        if field.type in _TIMES:
            value = self.bucketed(value, field, bucket or "DAY")
            self.types[label] = _synthetic(column, FieldType.DATE)
        elif bucket is not None:
            raise BadUserInput(
                f"{camel(column)} is a {field.type.value}, not a date or date-time; only "
                "those are grouped by time buckets",
                field="groupBy",
            )
        else:
            self.types[label] = field
        self.columns[label] = value
        self.keys[column] = label

    def aggregate(self, function: str, column: str | None, argument: str) -> str:
        """The label of ``function`` over ``column`` in the grouped rows (added once)."""
        if function == "count":
            label = "count"
            if label not in self.columns:
                self.columns[label] = func.count()
                self.types[label] = result_field("count", label, None)
            return label
        if column is None:
            raise BadUserInput(f"{function.upper()} needs a field", field=argument)
        field = self.field(column, f"compute {function.replace('_', ' ')} of", argument)
        if column not in aggregatable(self.entity, function):
            kinds = "numbers" if function in {"sum", "avg"} else "numbers, dates and date-times"
            raise BadUserInput(
                f"{function.upper()} is computed over {kinds}; {camel(column)} is a "
                f"{field.type.value}",
                field=argument,
            )
        label = f"{function}__{column}"
        if label in self.columns:
            return label
        value = self.value(column, field)
        result = result_field(function, column, field)
        if function == "count_distinct":
            expr: ColumnElement[Any] = func.count(value.distinct())
        elif function == "sum":
            expr = type_coerce(func.sum(value), ExactDecimal(38, result.effective_scale))
        elif function == "avg":
            expr = self.average(value, field)
        elif function == "min":
            expr = func.min(value)
        else:
            expr = func.max(value)
        self.columns[label] = expr
        self.types[label] = result
        return label

    def average(self, value: Any, field: FieldDef) -> ColumnElement[Any]:
        """The exact average, rounded half away from zero to AVERAGE_PLACES more places.

        PostgreSQL's ``round(numeric, n)`` rounds so; on SQLite, where decimals are scaled
        integers, it is integer arithmetic on the sum and count (never a float).
        """
        scale = field.effective_scale if field.type is FieldType.DECIMAL else 0
        places = scale + AVERAGE_PLACES
        decimal = ExactDecimal(38, places)
        if self.dialect == "postgresql":
            return type_coerce(func.round(func.avg(value), places), decimal)
        # |sum| = q * n + r; the average's places are q's and those of r / n, so no
        # intermediate value grows past the sum itself (SQLite would turn it into a float).
        total = cast(func.sum(value), Integer)
        n = func.count(value)
        unit = 10**AVERAGE_PLACES
        size = func.abs(total)
        rounded = _quotient(size, n) * unit + _quotient((size % n) * (unit * 2) + n, n * 2)
        return type_coerce(case((total < 0, -rounded), else_=rounded), decimal)

    def bucketed(self, value: Any, field: FieldDef, bucket: str) -> ColumnElement[Any]:
        """The first day of ``value``'s time bucket, a date in the deployment's time zone."""
        zone = self.compiler.clock.timezone
        if self.dialect == "postgresql":
            local: ColumnElement[Any]
            if field.type is FieldType.DATETIME:
                local = func.timezone(sql_text(_zone_name(zone)), value)
            else:
                local = cast(value, DateTime())
            if bucket == "DAY":
                return cast(local, Date())
            return cast(func.date_trunc(sql_text(bucket.lower()), local), Date())
        local = _sqlite_local(value, zone) if field.type is FieldType.DATETIME else value
        match bucket:
            case "DAY":
                return func.date(local)
            case "WEEK":
                return func.date(local, sql_text("-6 days"), sql_text("weekday 1"))
            case "MONTH":
                return func.date(local, sql_text("start of month"))
            case "QUARTER":
                back = (cast(func.strftime(sql_text("%m"), local), Integer) - 1) % 3
                months = sql_text("-").concat(cast(back, String)).concat(sql_text(" months"))
                return func.date(local, sql_text("start of month"), months)
            case _:
                return func.date(local, sql_text("start of year"))

    def having(self, spec: Any, depth: int = 1) -> dict[str, Any]:
        """The having input as a filter over the grouped rows' labels (``sum__amount``)."""
        out: dict[str, Any] = {}
        for name, value in (spec or {}).items():
            if name in {"and", "or"}:
                out[name] = [self.having(item, depth + 1) for item in value]
            elif name == "not":
                out[name] = self.having(value, depth + 1)
            elif name == "count":
                out[self.aggregate("count", None, "having")] = value
            else:
                for column, ops in value.items():
                    out[self.aggregate(name, column, "having")] = ops
        return out

    # -- The statement --------------------------------------------------------------------

    def compile(self, fields: Fields) -> ColumnElement[Any]:
        compiler, args = self.compiler, self.args
        first = args.get("first")
        self.size = size = DEFAULT_GROUPS if first is None else first
        if not 0 <= size <= MAX_GROUPS:
            raise BadUserInput(f"first takes 0 to {MAX_GROUPS} groups", field="first")
        compiler.spend(size)
        for name in query.filtered_fields(args.get("filter")):
            compiler.access.require_clear(self.entity_name, name, "filter by")
            compiler.require_readable(self.entity_name, name)
        for spec in args.get("group_by") or ():
            self.group_key(spec)
        self.aggregate("count", None, "count")
        having = self.having(args.get("having"))
        order: list[tuple[str, str]] = []
        for spec in args.get("order_by") or ():
            order.append((self.order_label(spec), spec.get("direction", "ASC")))
        group_json = self.group_json(fields)

        blind = compiler.blind_match()
        where = query.compile_filter(
            self.entity,
            self.base,  # type: ignore[arg-type]
            args.get("filter"),
            blind=blind,
            computed=self.computed,
        )
        # The same row rule as the entity's list: only records the caller may read count.
        grouped = (
            select(*(expr.label(label) for label, expr in self.columns.items()))
            .select_from(self.base)
            .where(where, *compiler.readable(self.entity_name, self.base))
            .group_by(*(self.columns[label] for label in self.keys.values()))
            .subquery()
        )
        # The grouped rows as an entity whose fields are the aggregates, so having is
        # compiled (and its values checked) by the filter compiler lists use.
        rows_entity = EntityDef.model_construct(
            name=self.entity_name,
            plural=self.entity.plural,
            label=self.entity.label,
            fields=tuple(
                t.model_copy(update={"name": label})
                for label, t in self.types.items()
                if label not in self.keys.values()
            ),
        )
        condition = query.compile_filter(rows_entity, grouped, having)  # type: ignore[arg-type]
        clauses = [_sorted(grouped.c[label], direction) for label, direction in order]
        clauses += [_sorted(grouped.c[label], "ASC") for label in self.keys.values()]
        page = select(grouped).where(condition).order_by(*clauses).limit(inline(size)).subquery()
        joins: Joins = []
        obj = group_json(page, joins)
        ordering: list[Any] = [_sorted(page.c[label], direction) for label, direction in order]
        ordering += [_sorted(page.c[label], "ASC") for label in self.keys.values()]
        # Without keys there is one group, but PostgreSQL's ordered aggregate needs a term.
        array = compiler.json.array_agg(obj, ordering or [page.c.count])
        found = select(array).select_from(outer_joined(page, joins))
        return compiler.json.embed(found.scalar_subquery())

    def order_label(self, spec: dict[str, Any]) -> str:
        column, function = spec.get("key"), spec.get("aggregate")
        if (column is None) == (function is None):
            raise BadUserInput("an orderBy item names a key or an aggregate", field="orderBy")
        if column is not None:
            if column not in self.keys:
                raise BadUserInput(
                    f"orderBy key {camel(column)} is not in groupBy", field="orderBy"
                )
            return self.keys[column]
        return self.aggregate(function, spec.get("field"), "orderBy")  # type: ignore[arg-type]

    def group_json(self, fields: Fields) -> Any:
        """A function of the page's rows to each group's JSON object, as selected."""
        compiler = self.compiler
        parts: list[tuple[str, str, Any]] = []
        for response_key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                parts.append((response_key, "typename", f"{type_name(self.entity_name)}Group"))
            elif name == "count":
                parts.append((response_key, "column", "count"))
            elif name == "key":
                parts.append((response_key, "key", (nodes, self.key_fields(nodes))))
            else:
                function = {"countDistinct": "count_distinct"}.get(name, name)
                inner: list[tuple[str, str | None]] = []
                for ikey, inodes in compiler.subfields(nodes).items():
                    iname = inodes[0].name.value
                    if iname == "__typename":
                        inner.append((ikey, None))
                        continue
                    column = _column_of(self.fields, iname)
                    inner.append((ikey, self.aggregate(function, column, name)))
                parts.append((response_key, "aggregates", (function, inner)))

        def build(page: FromClause, joins: Joins) -> ColumnElement[Any]:
            pairs: list[tuple[str, ColumnElement[Any]]] = []
            for response_key, kind, detail in parts:
                if kind == "typename":
                    pairs.append((response_key, sql_text(detail)))
                elif kind == "column":
                    pairs.append((response_key, page.c[detail]))
                elif kind == "key":
                    pairs.append((response_key, self.key_json(page, joins, response_key, *detail)))
                else:
                    function, inner = detail
                    values = []
                    for ikey, label in inner:
                        if label is None:
                            values.append(
                                (
                                    ikey,
                                    sql_text(f"{type_name(self.entity_name)}{_OUTPUTS[function]}"),
                                )
                            )
                        else:
                            values.append((ikey, self.wire(page, label)))
                    pairs.append((response_key, compiler.json.object(values)))
            return compiler.json.object(pairs)

        return build

    def key_fields(self, nodes: Any) -> list[tuple[str, str, Any]]:
        """Each selected key field: (response key, column, nodes); checked to be grouped."""
        selected = []
        for ikey, inodes in self.compiler.subfields(nodes).items():
            iname = inodes[0].name.value
            if iname == "__typename":
                selected.append((ikey, "", inodes))
                continue
            column = _column_of(self.fields, iname)
            if column not in self.keys:
                raise BadUserInput(
                    f"key.{iname} is selected but the groups are not by {iname}; add it to groupBy",
                    field="groupBy",
                )
            selected.append((ikey, column, inodes))
        return selected

    def key_json(
        self,
        page: FromClause,
        joins: Joins,
        response_key: str,
        nodes: Any,
        selected: list[tuple[str, str, Any]],
    ) -> ColumnElement[Any]:
        compiler = self.compiler
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for ikey, column, inodes in selected:
            if not column:
                pairs.append((ikey, sql_text(f"{type_name(self.entity_name)}GroupKey")))
                continue
            label = self.keys[column]
            field = self.fields[column]
            if field.type is FieldType.RELATION and inodes[0].selection_set is not None:
                pairs.append(
                    (ikey, self.related(page, joins, field, label, inodes, response_key, ikey))
                )
            else:
                pairs.append((ikey, self.wire(page, label)))
        return compiler.json.object(pairs)

    def related(
        self,
        page: FromClause,
        joins: Joins,
        field: FieldDef,
        label: str,
        nodes: Any,
        response_key: str,
        ikey: str,
    ) -> ColumnElement[Any]:
        """The related record of a to-one key, under its entity's own read rule."""
        compiler = self.compiler
        assert field.target is not None
        target = compiler.catalog.table(field.target).alias()
        compiler.spend(self.size)
        on = and_(target.c.id == page.c[label], *compiler.readable(field.target, target))
        joins.append((target, on))
        path: tuple[Step, ...] = (self.key, EACH, response_key, ikey)
        sub = compiler.object(field.target, target, compiler.subfields(nodes), 2, joins, path)
        return compiler.json.embed(case((target.c.id.is_(None), null()), else_=sub))

    def wire(self, page: FromClause, label: str) -> ColumnElement[Any]:
        field = self.types[label]
        return self.compiler.json.value(enum_column(field, page.c[label]), field)


def _label(column: str, field: FieldDef) -> str:
    """A field's description here: its filter label, capitalised as the schema's are."""
    text = field_label(column, field)
    return f"{text[:1].upper()}{text[1:]}"


def _quotient(dividend: Any, divisor: Any) -> ColumnElement[Any]:
    """Integer division as SQLite does it (SQLAlchemy's ``/`` would divide as floats)."""
    quotient = dividend.self_group().op("/", return_type=Integer)(divisor.self_group())
    return quotient.self_group()  # type: ignore[no-any-return]


def _column_of(fields: dict[str, FieldDef], graphql_name: str) -> str:
    for column in fields:
        if camel(column) == graphql_name:
            return column
    for column, field in fields.items():
        if field.type is FieldType.RELATION and camel(field.name) == graphql_name:
            return column
    raise BadUserInput(f"{graphql_name} cannot be aggregated")


def _sorted(column: ColumnElement[Any], direction: str) -> UnaryExpression[Any]:
    """As the lists sort: empty values last ascending, first descending."""
    if direction == "DESC":
        return column.desc().nulls_first()
    return column.asc().nulls_last()


def _zone_name(zone: dt.tzinfo) -> str:
    if isinstance(zone, ZoneInfo):
        return zone.key
    offset = zone.utcoffset(None)
    if offset is None:
        return "UTC"
    # POSIX zone names count offsets west of Greenwich as positive.
    seconds = int(-offset.total_seconds())
    return (
        f"<{seconds:+d}>{seconds // 3600:+d}" if seconds % 3600 else f"Etc/GMT{seconds // 3600:+d}"
    )


def _sqlite_local(value: Any, zone: dt.tzinfo) -> ColumnElement[Any]:
    """A stored UTC instant (fixed-width text) as the zone's local date-time text.

    SQLite knows no time zones, so the zone's offsets are written into the SQL: one
    modifier for a zone whose offset never changed since 1970, else a CASE over its
    transitions (daylight saving time), compared as the fixed-width UTC text is.
    """
    changes = _offsets(zone)
    if len(changes) == 1:
        return func.datetime(value, sql_text(_modifier(changes[0][1])))
    whens = [
        (value >= sql_text(since), sql_text(_modifier(offset)))
        for since, offset in reversed(changes[1:])
    ]
    modifier = case(*whens, else_=sql_text(_modifier(changes[0][1])))
    return func.datetime(value, modifier)


def _modifier(seconds: int) -> str:
    return f"{seconds:+d} seconds"


@lru_cache(maxsize=8)
def _offsets(zone: dt.tzinfo) -> list[tuple[str, int]]:
    """(UTC text from which it holds, offset in seconds) of ``zone`` from 1970 to 2100."""
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def offset(instant: dt.datetime) -> int:
        found = instant.astimezone(zone).utcoffset()
        return int(found.total_seconds()) if found is not None else 0

    changes = [(utc_text(start), offset(start))]
    day = start
    while day.year < 2100:
        following = day + dt.timedelta(days=1)
        if offset(following) != changes[-1][1]:
            low, high = day, following
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == changes[-1][1]:
                    low = middle
                else:
                    high = middle
            changes.append((utc_text(high.replace(microsecond=0)), offset(following)))
        day = following
    return changes
