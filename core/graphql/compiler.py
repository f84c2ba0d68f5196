"""Read queries compiled to one SQL statement whose JSON the database builds.

A GraphQL read such as ``opportunities(first: 50) { edges { node { name account
{ name } owner { displayName } } } }`` becomes a single SELECT: the page is
chosen by a keyset subquery (filter, order, cursor, LIMIT n+1), to-one
relations become LEFT JOINs on the key, reverse relations nested connections,
and the response JSON is assembled by the database (see :mod:`sqljson`). So the
number of statements depends on the query's shape, never on the number of
rows, and the Python side only concatenates the database's JSON text.

Filters, order and cursors come from :mod:`qiao.core.query`, the same
code the records service uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    SelectionSetNode,
    is_abstract_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values
from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    FromClause,
    Integer,
    Row,
    Select,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    not_,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.exc import OperationalError

from qiao.core import query
from qiao.core.encryption import FieldEncryption
from qiao.core.errors import BadUserInput, ConfigurationError, Forbidden
from qiao.core.formula.columns import ComputedColumns, computed_columns
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.evaluator import Clock
from qiao.core.graphql.evaluated import marked
from qiao.core.graphql.names import enum_name, stored_value
from qiao.core.graphql.nodes import holders
from qiao.core.graphql.plan import (
    MAX_NODES,
    NODE_TYPE_KEY,
    ColumnField,
    RootGet,
    RootList,
    RootNode,
    RootNodes,
    ToManyField,
    ToOneField,
    TypenameField,
)
from qiao.core.graphql.sqljson import JsonSQL, for_dialect, sql_text
from qiao.core.graphql.strawberry_internals import graphql_schema
from qiao.core.graphql.withheld import EACH, Step, Withheld
from qiao.core.ids import is_record_id
from qiao.core.masking import Mask, sql_mask
from qiao.core.metadata.model import FieldDef, FieldType
from qiao.core.permissions.access import Access
from qiao.core.storage.database import Database, planned_per_run
from qiao.core.storage.loop_reads import LoopReads
from qiao.core.storage.sqlalchemy_internals import bind_processors

if TYPE_CHECKING:  # the builder imports the aggregates, which build on this module
    from qiao.core.graphql.builder import BuiltSchema

#: The most rows a query may ask for across all its connections (page sizes multiplied out).
MAX_QUERY_COST = 100_000

Fields = dict[str, list[FieldNode]]
#: ``__typename``, asked for under NODE_TYPE_KEY when strawberry must resolve a node's type.
_TYPE_TAG = FieldNode(alias=NameNode(value=NODE_TYPE_KEY), name=NameNode(value="__typename"))
#: Tables LEFT JOINed to a row for its to-one relations, each with its ON clause, in order.
Joins = list[tuple[FromClause, ColumnElement[bool]]]


@dataclass(frozen=True)
class CompiledRead:
    """SQL text plus parameters, ready for the DB-API driver, and the response keys."""

    sql: str
    params: tuple[Any, ...] | dict[str, Any]
    keys: tuple[str, ...]
    #: Whether the JSON holds sealed values to open (FieldEncryption.reveal) before use.
    sealed: bool = False
    #: Whether the JSON holds formula values to evaluate in Python (graphql/evaluated.py).
    evaluated: bool = False
    #: False when a formula read TODAY() or NOW(), bound as parameters when compiled.
    cacheable: bool = True
    #: Selected fields the caller may not read: null in the JSON, an error each (withheld.py).
    withheld: tuple[Withheld, ...] = ()
    #: Whether a filter or a row rule chooses the rows by values: then the statement is
    #: planned for its values on every run (storage.database.planned_per_run).
    keyed: bool = False

    def run(self, conn: Connection) -> Row[Any]:
        """The statement's one row of JSON texts.

        SQLite keeps decimals as 64-bit integers of their smallest unit and stops a
        sum that passes them with "integer overflow"; that is a bound of the
        database the caller can act on (a narrower filter, PostgreSQL), not a fault.
        """
        try:
            # Rows chosen by values (an account's activities): planned for them each run.
            with planned_per_run(conn) if self.keyed else contextlib.nullcontext():
                row = conn.exec_driver_sql(self.sql, self.params).first()
        except OperationalError as exc:
            if conn.dialect.name != "sqlite" or "integer overflow" not in str(exc.orig):
                raise
            raise BadUserInput(
                "a sum passes 2⁶³ of its field's smallest unit, the most SQLite holds exactly; "
                "narrow the filter or group further (PostgreSQL has no such bound)"
            ) from exc
        assert row is not None
        return row

    async def run_awaited(self, reads: LoopReads) -> tuple[Any, ...]:
        """:meth:`run` awaited in the event loop, on PostgreSQL (storage.loop_reads)."""
        row = await reads.first_row(self.sql, self.params, prepare=not self.keyed)
        assert row is not None
        return row


def _at(path: tuple[Step, ...], positions: tuple[int, ...]) -> tuple[Step, ...]:
    """``path`` with its list step narrowed to the items at ``positions``."""
    return tuple(positions if step is EACH else step for step in path)


def plain(value: Any) -> Any:
    """Strawberry input objects and enums as plain data with snake_case keys."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {_snake(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, enum.Enum):
        picklist: FieldDef | None = getattr(type(value), "__picklist__", None)
        return value.value if picklist is None else stored_value(picklist, value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or v.__class__.__name__ == "UnsetType":
                continue
            out[f.name.rstrip("_")] = plain(v)
        return out
    return value


class ReadCompiler:
    """Compiles the read fields of one operation against one built schema."""

    def __init__(
        self,
        built: BuiltSchema,
        dialect: Dialect,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Any,
        access: Access | None = None,
        encryption: FieldEncryption | None = None,
        clock: Clock | None = None,
        connection: Connection | None = None,
        db: Database | None = None,
    ) -> None:
        self.built = built
        #: Where node ids are looked up when no ``connection`` is given.
        self.db = db
        #: Where encrypted filters are confirmed (FieldEncryption.matching); None: a read
        #: connection of their own, before the compiled statement runs.
        self.confirming = connection
        self._matched: dict[tuple[str, str, tuple[Any, ...]], list[str]] = {}
        #: TODAY() and NOW() of formula fields.
        self.clock = clock or Clock()
        self.evaluated = False
        self.cacheable = True
        self._computed: dict[tuple[str, int], tuple[FromClause, ComputedColumns]] = {}
        #: Opens encrypted fields after the query ran; without it they cannot be read.
        self.encryption = encryption
        self.sealed = False
        self.keyed = False
        #: The caller's access: row filters on every table read, checks on every field.
        self.access = access or Access.unrestricted(built.catalog)
        self.plan = built.plan
        self.catalog = built.catalog
        self.graphql = graphql_schema(built.schema)
        self.dialect = dialect
        self.json: JsonSQL = for_dialect(dialect.name)
        self.fragments = fragments
        # Strawberry hands resolvers the coerced variables as a plain dict, while
        # graphql-core's argument coercion expects its VariableValues record.
        self.variables = (
            VariableValues(sources={}, coerced=variables)
            if isinstance(variables, dict)
            else variables
        )
        self.cost = 0
        #: Whether nodes carry their object type's name under NODE_TYPE_KEY (set when
        #: strawberry executes, to resolve the Node interface; compiled answers go to the
        #: client as the database wrote them and must hold only what was asked).
        self.tag_nodes = False
        #: Selected fields answered null because the caller may not read them.
        self.withheld: list[Withheld] = []
        #: How many parent rows the field being compiled may repeat for (product of page sizes).
        self._fan_out = 1

    def blind_match(self) -> query.BlindMatch | None:
        """How a filter finds values of encrypted fields; None without field encryption."""
        return self._blind_match if self.encryption is not None else None

    def _blind_match(
        self, table: FromClause, entity: str, field: FieldDef, values: Sequence[Any]
    ) -> list[str]:
        """Rows whose encrypted field holds one of ``values``, confirmed by decryption.

        The ids found are part of the SQL, so the compiled read is not cached.
        """
        assert self.encryption is not None
        self.cacheable = False
        key = (entity, field.name, tuple(values))
        if key not in self._matched:
            self._matched[key] = self.encryption.matching(
                self.confirming, table, entity, field, values
            )
        return self._matched[key]

    # -- Field collection -----------------------------------------------------------------

    def collect(
        self, selection_sets: Iterable[SelectionSetNode | None], type_name: str | None = None
    ) -> Fields:
        """Fields by response key, fragments expanded and @skip/@include applied.

        Given the object type ``type_name``, fragments on other types are left out
        (a selection on the Node interface); without it every fragment applies, as
        validation leaves no other kind on an object type's selection.
        """
        fields: Fields = {}
        visited: set[str] = set()

        def walk(selection_set: SelectionSetNode | None) -> None:
            if selection_set is None:
                return
            for sel in selection_set.selections:
                if not self._included(sel):
                    continue
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    fields.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if self._applies(sel.type_condition, type_name):
                        walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    if name not in visited and name in self.fragments:
                        fragment = self.fragments[name]
                        if self._applies(fragment.type_condition, type_name):
                            visited.add(name)
                            walk(fragment.selection_set)

        for selection_set in selection_sets:
            walk(selection_set)
        return fields

    def _applies(self, condition: NamedTypeNode | None, type_name: str | None) -> bool:
        """Whether a fragment on ``condition`` applies to an object of type ``type_name``."""
        if condition is None or type_name is None or condition.name.value == type_name:
            return True
        on = self.graphql.get_type(condition.name.value)
        obj = self.graphql.get_type(type_name)
        return is_abstract_type(on) and self.graphql.is_sub_type(on, obj)  # type: ignore[arg-type]

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if"):
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and not include.get("if"))

    def subfields(self, nodes: list[FieldNode]) -> Fields:
        return self.collect(n.selection_set for n in nodes)

    def arguments(self, type_name: str, nodes: list[FieldNode]) -> dict[str, Any]:
        gql_type = self.graphql.get_type(type_name)
        field_def = gql_type.fields[nodes[0].name.value]  # type: ignore[union-attr]
        raw = get_argument_values(field_def, nodes[0], self.variables)
        return {_snake(k): plain(v) for k, v in raw.items()}

    # -- Roots ----------------------------------------------------------------------------

    def root_expression(
        self, key: str, type_name: str, nodes: list[FieldNode]
    ) -> ColumnElement[Any]:
        """The JSON of one root query field (an object or a connection) at response ``key``."""
        name = nodes[0].name.value
        meaning = self.plan.roots[name]
        args = self.arguments(type_name, nodes)
        if isinstance(meaning, RootGet):
            return self.object_by_id(meaning.entity, args["id"], nodes, (key,))
        if isinstance(meaning, RootNode):
            return self.node(args["id"], nodes, (key,))
        if isinstance(meaning, RootNodes):
            return self.nodes(args["ids"], nodes, (key, EACH))
        if not isinstance(meaning, RootList):
            return meaning.compile(self, meaning.entity, args, self.subfields(nodes), key)
        return self.connection(meaning.entity, args, self.subfields(nodes), None, 1, (key,))

    def object_by_id(
        self, entity: str, record_id: Any, nodes: list[FieldNode], path: tuple[Step, ...]
    ) -> ColumnElement[Any]:
        if not is_record_id(record_id):
            raise BadUserInput(f"{record_id!r} is not a record id", field="id")
        table = self.catalog.table(entity).alias()
        self._spend(1)
        joins: Joins = []
        obj = self.object(entity, table, self.subfields(nodes), 1, joins, path)
        found = (
            select(obj)
            .select_from(outer_joined(table, joins))
            .where(table.c.id == record_id, *self.readable(entity, table))
        )
        return self.json.embed(found.scalar_subquery())

    def node(
        self, record_id: Any, nodes: list[FieldNode], path: tuple[Step, ...]
    ) -> ColumnElement[Any]:
        """The JSON of the record with this id, whatever its entity; null if not readable."""
        if not is_record_id(record_id):
            raise BadUserInput(f"{record_id!r} is not a record id", field="id")
        found = self._found([record_id], nodes, path)
        if found is None:
            return null()
        return self.json.embed(select(found.c.node).limit(inline(1)).scalar_subquery())

    def nodes(
        self, ids: list[Any], nodes: list[FieldNode], path: tuple[Step, ...]
    ) -> ColumnElement[Any]:
        """An array with the JSON of each id's record, in order; null where not readable.
        ``path`` is the place of each item (the root key, then EACH)."""
        if len(ids) > MAX_NODES:
            raise BadUserInput(
                f"nodes takes at most {MAX_NODES} ids; {len(ids)} were given", field="ids"
            )
        for position, record_id in enumerate(ids):
            if not is_record_id(record_id):
                raise BadUserInput(
                    f"ids[{position}]: {record_id!r} is not a record id", field="ids"
                )
        found = self._found(ids, nodes, path) if ids else None
        if found is None:
            return self.json.constant([None] * len(ids))
        wanted = self.json.listed_ids(ids)
        in_order = self.json.array_agg(self.json.embed(found.c.node), [wanted.c.position])
        joined = wanted.outerjoin(found, found.c.id == wanted.c.id)
        return self.json.embed(select(in_order).select_from(joined).scalar_subquery())

    def _found(
        self, ids: list[str], nodes: list[FieldNode], path: tuple[Step, ...]
    ) -> Subquery | None:
        """Rows (id, node) of the records with these ids that the caller may read.

        Each entity that holds some of the ids (see :mod:`qiao.core.graphql.nodes`)
        is read once for all of its ids, under the caller's row rules, in one UNION
        ALL; None when no entity holds any. Each entity's JSON holds what its own
        fragments select. Every entity a fragment selects fields of is compiled, held
        ids or not, so its fields are checked as its by-id query checks them and what
        a query may read never depends on which records exist.
        """
        self._spend(len(ids))
        held: dict[str, list[str]] = {}
        holder = self._holders(ids)
        for record_id, entity in holder.items():
            held.setdefault(entity, []).append(record_id)
        branches = []
        outer, self._fan_out = self._fan_out, len(ids)
        try:
            for entity in sorted(self.catalog.registry.entities):
                type_name = self.plan.type_names[entity]
                fields = self.collect((n.selection_set for n in nodes), type_name)
                asked = {group[0].name.value for group in fields.values()} - {"id", "__typename"}
                if entity not in held and not asked:
                    continue
                if self.tag_nodes:
                    fields[NODE_TYPE_KEY] = [_TYPE_TAG]
                table = self.catalog.table(entity).alias()
                joins: Joins = []
                # A field withheld from this entity's records is an error where they
                # stand, not under the same response key of another type's record.
                mine = tuple(
                    i for i, record_id in enumerate(ids) if holder.get(record_id) == entity
                )
                withheld = len(self.withheld)
                obj = self.object(entity, table, fields, 1, joins, _at(path, mine))
                if entity in held:
                    branches.append(
                        select(table.c.id.label("id"), obj.label("node"))
                        .select_from(outer_joined(table, joins))
                        .where(table.c.id.in_(sorted(held[entity])), *self.readable(entity, table))
                    )
                else:  # compiled for its checks only: no record of it is answered
                    del self.withheld[withheld:]
        finally:
            self._fan_out = outer
        if not branches:
            return None
        return (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()

    def _holders(self, ids: list[str]) -> dict[str, str]:
        """Which entity holds each id; data, so the compiled read is not cached."""
        self.cacheable = False
        if self.confirming is not None:
            return holders(self.confirming, self.catalog, ids)
        if self.db is None:
            raise ConfigurationError("node(id:) needs a database to find records in")
        return self.db.run_read(lambda conn: holders(conn, self.catalog, ids))

    def readable(self, entity: str, table: FromClause) -> list[ColumnElement[bool]]:
        """The caller's read rule for ``table`` (nothing for unrestricted callers)."""
        self.access.require(entity, "read")
        condition = self.access.row_filter(entity, table, "read")
        return [] if condition is None else [condition]

    def compile_object(
        self, key: str, entity: str, record_id: str, nodes: list[FieldNode]
    ) -> CompiledRead:
        """The JSON of one record at response ``key``, shaped by ``nodes`` (mutation results)."""
        expr = self.json.as_text(self.object_by_id(entity, record_id, nodes, (key,)))
        return self._flagged(_to_driver(select(expr), self.dialect, (key,)))

    def compile(self, roots: list[tuple[str, str, list[FieldNode]]]) -> CompiledRead:
        """One SELECT with a JSON text column per (response key, parent type, nodes)."""
        columns = [
            self.json.as_text(self.root_expression(key, type_name, nodes)).label(f"r{i}")
            for i, (key, type_name, nodes) in enumerate(roots)
        ]
        compiled = _to_driver(select(*columns), self.dialect, tuple(k for k, _, _ in roots))
        return self._flagged(compiled)

    def _flagged(self, compiled: CompiledRead) -> CompiledRead:
        return dataclasses.replace(
            compiled,
            sealed=self.sealed,
            evaluated=self.evaluated,
            cacheable=self.cacheable,
            withheld=tuple(self.withheld),
            keyed=self.keyed,
        )

    # -- Computed fields ------------------------------------------------------------------

    def computed(self, entity: str, table: FromClause) -> ComputedColumns:
        """The SQL of ``entity``'s formula and rollup fields over ``table``."""
        key = (entity, id(table))
        cached = self._computed.get(key)
        if cached is not None:
            return cached[1]
        found = computed_columns(
            self.catalog,
            entity,
            table,
            self.dialect.name,
            self.clock,
            scope=self.access.row_scope(),
        )
        # The table is kept with its columns, so its id is not reused while this compiler lives.
        self._computed[key] = (table, found)
        fields = computed_fields(self.catalog.registry).of(entity).values()
        if any(c.formula is not None and c.formula.uses_clock for c in fields):
            self.cacheable = False
        return found

    def require_readable(self, entity: str, name: str) -> None:
        """Refuse a field the caller may not read; a computed one also needs what it reads."""
        refusal = self.unreadable(entity, name)
        if refusal is not None:
            raise refusal

    def unreadable(self, entity: str, name: str) -> Forbidden | None:
        """Why the caller may not read a field; a computed one also needs what it reads."""
        try:
            self.access.require_readable(entity, name)
        except Forbidden as refusal:
            return refusal
        unclear = self.access.unclear_source(entity, name)
        if unclear is None:
            return None
        return Forbidden(
            f"you may not read {entity}.{name}: it is computed from "
            f"{unclear[0]}.{unclear[1]}, which you may not read",
            field=name,
        )

    def _withhold(self, entity: str, field: FieldDef | None, path: tuple[Step, ...]) -> bool:
        """Whether the field at ``path`` is hidden from the caller (then noted as withheld)."""
        if field is None:
            return False
        refusal = self.unreadable(entity, field.name)
        if refusal is None:
            return False
        self.withheld.append(Withheld(path, refusal))
        return True

    def _computed_value(
        self, entity: str, table: FromClause, field: FieldDef
    ) -> ColumnElement[Any]:
        computed = self.computed(entity, table)
        sql = computed.columns.get(field.name)
        if sql is None:
            self.evaluated = True
            return marked(entity, field.name, table)
        return self.json.value(sql, field, field.name)

    # -- Objects --------------------------------------------------------------------------

    def object(
        self,
        entity_name: str,
        table: FromClause,
        fields: Fields,
        depth: int,
        joins: Joins,
        path: tuple[Step, ...],
    ) -> ColumnElement[Any]:
        """The JSON object of ``table``'s row at ``path``; to-one relations go to ``joins``.

        A field the caller may not read is SQL null, never its column, and is
        noted in :attr:`withheld` for the error at its path.

        A to-one relation is a LEFT JOIN of its target on the key (the caller's
        row filter in the ON clause), so PostgreSQL looks targets up by key or
        hashes them once per page; a correlated subquery per row would be
        planned on its own, and on a small table as a scan for every row.
        """
        type_name = self.plan.type_names[entity_name]
        _, meanings = self.plan.objects[type_name]
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, nodes in fields.items():
            meaning = meanings.get(nodes[0].name.value)
            match meaning:
                case ColumnField(column=column, field=field):
                    if self._withhold(entity_name, field, (*path, key)):
                        pairs.append((key, null()))
                        continue
                    mask = None if field is None else self.access.masked(entity_name, field.name)
                    if field is not None and field.encrypted:
                        pairs.append((key, self._sealed(entity_name, table, field, mask)))
                        continue
                    if field is not None and field.computed:
                        pairs.append((key, self._computed_value(entity_name, table, field)))
                        continue
                    value = enum_column(field, table.c[column])
                    if mask is not None:  # the database never sends the clear value
                        value = sql_mask(mask, value, self.dialect.name)
                    pairs.append((key, self.json.value(value, field, column)))
                case TypenameField(type_name=name):
                    pairs.append((key, sql_text(name)))
                case ToOneField(field=field):
                    assert field.target is not None
                    if self._withhold(entity_name, field, (*path, key)):
                        pairs.append((key, null()))
                        continue
                    target = self.catalog.table(field.target).alias()
                    self.spend(1)
                    on = and_(
                        target.c.id == table.c[field.column],
                        *self.readable(field.target, target),
                    )
                    joins.append((target, on))
                    sub = self.object(
                        field.target,
                        target,
                        self.subfields(nodes),
                        depth + 1,
                        joins,
                        (*path, key),
                    )
                    found = case((target.c.id.is_(None), null()), else_=sub)
                    pairs.append((key, self.json.embed(found)))
                case ToManyField(reverse=rev):
                    args = self.arguments(type_name, nodes)
                    fk = rev.field.column

                    def link(child: FromClause, fk: str = fk) -> ColumnElement[bool]:
                        return child.c[fk] == table.c.id

                    pairs.append(
                        (
                            key,
                            self.connection(
                                rev.entity,
                                args,
                                self.subfields(nodes),
                                link,
                                depth + 1,
                                (*path, key),
                                table,
                            ),
                        )
                    )
                case _:
                    raise BadUserInput(f"{type_name}.{nodes[0].name.value} cannot be compiled")
        return self.json.object(pairs)

    def _sealed(
        self, entity: str, table: FromClause, field: FieldDef, mask: Mask | None
    ) -> ColumnElement[Any]:
        """An encrypted field's sealed value, marked to be opened (and masked) after the query."""
        if self.encryption is None:
            raise BadUserInput(f"{field.name} is encrypted and cannot be read here")
        self.sealed = True
        return self.encryption.marked(entity, field, table, mask)

    # -- Connections ----------------------------------------------------------------------

    def connection(
        self,
        entity_name: str,
        args: dict[str, Any],
        fields: Fields,
        link: Callable[[FromClause], ColumnElement[bool]] | None,
        depth: int,
        path: tuple[Step, ...],
        parent: FromClause | None = None,
    ) -> ColumnElement[Any]:
        """A Relay connection at ``path``: edges, pageInfo and totalCount as selected."""
        entity = self.catalog.entity(entity_name)
        base = self.catalog.table(entity_name)
        window = query.Window.of(
            entity,
            args.get("order_by"),
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
        )
        size, ordering = window.size, window.ordering
        self.spend(size)

        for name in query.filtered_fields(args.get("filter")):
            self.access.require_clear(entity_name, name, "filter by")
            self.require_readable(entity_name, name)
        for key in ordering.keys:
            if key.column != "id":
                self.access.require_clear(entity_name, key.field.name, "order by")
                self.require_readable(entity_name, key.field.name)

        self.keyed = (
            self.keyed
            or bool(args.get("filter"))
            or self.access.row_filter(entity_name, base, "read") is not None
        )

        def conditions(table: FromClause) -> list[ColumnElement[bool]]:
            blind = self.blind_match()
            conds = [
                query.compile_filter(
                    entity,
                    table,  # type: ignore[arg-type]
                    args.get("filter"),
                    blind=blind,
                    computed=self.computed(entity_name, table),
                )
            ]
            if link is not None:
                conds.append(link(table))
            return conds + self.readable(entity_name, table)

        def walked(table: FromClause) -> Select[Any]:
            """Rows of this connection beyond the cursor, in walking order."""
            computed = self.computed(entity_name, table)
            stmt = select(table).select_from(table).where(*conditions(table))  # type: ignore[arg-type]
            stmt = correlated(stmt, parent).where(window.beyond(table, computed))  # type: ignore[arg-type]
            return stmt.order_by(*window.walk.clauses(table, computed))  # type: ignore[arg-type]

        # The page is exactly ``size`` rows in walking order; a backward page is put
        # back in display order by an outer ORDER BY. Both keep a LIMIT, so SQLite
        # neither flattens them into the aggregate nor drops their ORDER BY, and
        # json_group_array receives rows in that order. PostgreSQL orders inside
        # json_agg. No window function and no count: the page costs what a
        # hand-written ``ORDER BY ... LIMIT n`` costs.
        rows = walked(base.alias()).limit(inline(size)).subquery()
        if window.backwards:
            page = self.computed(entity_name, rows)
            rows = (
                select(rows).order_by(*ordering.clauses(rows, page)).limit(inline(size)).subquery()
            )  # type: ignore[arg-type]
        on_rows = self.computed(entity_name, rows)

        edge_fields = self._merge(fields, "edges")
        edge_keys = [k for k, n in fields.items() if n[0].name.value == "edges"]
        edge_pairs: list[tuple[str, ColumnElement[Any]]] = []
        node_joins: Joins = []
        cursor_expr = self.json.cursor(
            ordering.signature,
            [
                self.json.value(
                    query.computed_or_column(rows, k.field, k.column, on_rows),
                    k.field if k.column != "id" else None,
                    k.column,
                )
                for k in ordering.keys
            ],
        )
        for key, nodes in edge_fields.items():
            name = nodes[0].name.value
            if name == "cursor":
                edge_pairs.append((key, cursor_expr))
            elif name == "node":
                outer, self._fan_out = self._fan_out, self._fan_out * max(size, 1)
                noted = len(self.withheld)
                try:
                    node = self.object(
                        entity_name,
                        rows,
                        self.subfields(nodes),
                        depth + 1,
                        node_joins,
                        (*path, edge_keys[0], EACH, key),
                    )
                finally:
                    self._fan_out = outer
                self._withheld_again(noted, len(path), edge_keys[1:])
                edge_pairs.append((key, node))
            elif name == "__typename":
                edge_pairs.append((key, sql_text(f"{self.plan.type_names[entity_name]}Edge")))
        if not edge_pairs:
            edge_pairs.append(("cursor", cursor_expr))
        edges = self.json.array_agg(
            self.json.object(edge_pairs),
            ordering.clauses(rows, on_rows),  # type: ignore[arg-type]
        )
        agg = select(edges.label("edges")).select_from(outer_joined(rows, node_joins)).subquery()
        edges_json = self.json.embed(agg.c.edges)

        def overflow() -> ColumnElement[bool]:
            """Whether rows remain beyond this page in the walking direction."""
            beyond = walked(base.alias()).limit(inline(1)).offset(inline(size))
            return exists(beyond.with_only_columns(literal_column("1")))

        def behind() -> ColumnElement[bool]:
            """Whether rows lie on the other side of the cursor."""
            if window.cursor is None:
                return false_()
            o = base.alias()
            computed = self.computed(entity_name, o)
            probe = select(1).select_from(o).where(*conditions(o), window.behind(o, computed))  # type: ignore[arg-type]
            return exists(correlated(probe, parent))

        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "edges":
                pairs.append((key, edges_json))
            elif name == "totalCount":
                c = base.alias()
                count = correlated(
                    select(func.count()).select_from(c).where(*conditions(c)),  # type: ignore[arg-type]
                    parent,
                ).scalar_subquery()
                pairs.append((key, count))
            elif name == "pageInfo":
                info: list[tuple[str, ColumnElement[Any]]] = []
                has_next, has_previous = window.page_info(overflow=overflow, behind=behind)
                for ikey, inodes in self.subfields(nodes).items():
                    iname = inodes[0].name.value
                    if iname == "hasNextPage":
                        info.append((ikey, self.json.boolean(has_next())))
                    elif iname == "hasPreviousPage":
                        info.append((ikey, self.json.boolean(has_previous())))
                    elif iname in {"startCursor", "endCursor"}:
                        terms = ordering.clauses(rows, on_rows)  # type: ignore[arg-type]
                        if iname == "endCursor":
                            terms = ordering.reversed().clauses(rows, on_rows)  # type: ignore[arg-type]
                        end = (
                            select(cursor_expr).select_from(rows).order_by(*terms).limit(inline(1))
                        )
                        info.append((ikey, end.scalar_subquery()))
                    elif iname == "__typename":
                        info.append((ikey, sql_text("PageInfo")))
                pairs.append((key, self.json.object(info)))
            elif name == "__typename":
                pairs.append((key, sql_text(f"{self.plan.type_names[entity_name]}Connection")))
        return self.json.embed(select(self.json.object(pairs)).select_from(agg).scalar_subquery())

    def _withheld_again(self, since: int, at: int, keys: list[str]) -> None:
        """The fields withheld since ``since`` also under other aliases of the edges at ``at``.

        Every alias of ``edges`` answers the same JSON, compiled once.
        """
        for item in self.withheld[since:]:
            for key in keys:
                path = (*item.path[:at], key, *item.path[at + 1 :])
                self.withheld.append(Withheld(path, item.error))

    def _merge(self, fields: Fields, name: str) -> Fields:
        nodes = [n for group in fields.values() for n in group if n.name.value == name]
        return self.subfields(nodes)

    def spend(self, rows: int) -> None:
        """Count ``rows`` records for each parent row the field being compiled repeats for."""
        self._spend(rows * self._fan_out)

    def _spend(self, rows: int) -> None:
        """Count the records a field may return; nested pages multiply (see MAX_QUERY_COST)."""
        self.cost += max(rows, 1)
        if self.cost > MAX_QUERY_COST:
            raise BadUserInput(
                f"this query could return more than {MAX_QUERY_COST} records; ask for smaller "
                "pages or fewer nested connections"
            )


def enum_column(field: FieldDef | None, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """An enum column as its values' GraphQL names (names.enum_name), as the schema names them.

    A manifest may store values such as ``zh_CN``; the JSON a compiled read builds
    holds ``ZH_CN``, the name clients see whichever path serves the request.
    """
    if field is None or field.type is not FieldType.ENUM:
        return column
    renamed = {v.value: enum_name(v.value) for v in field.values if v.value != enum_name(v.value)}
    if not renamed:
        return column
    return case(renamed, value=column, else_=column)


def correlated(stmt: Select[Any], parent: FromClause | None) -> Select[Any]:
    """``stmt`` referring to ``parent``'s row (a nested connection), never joining it again.

    SQLAlchemy correlates automatically only to the directly enclosing SELECT;
    a nested connection's page sits several levels below its parent's row.
    """
    return stmt if parent is None else stmt.correlate(parent)


def inline(count: int) -> ColumnElement[int]:
    """A page size written into the SQL text rather than sent as a parameter.

    PostgreSQL plans a prepared statement whose LIMIT is a parameter anew on
    every execution (a generic plan cannot know how many rows are wanted),
    which doubled the database's CPU per request. Page sizes are validated
    integers from a small range, so the texts stay few and cacheable.
    """
    return literal(int(count), Integer, literal_execute=True)


def outer_joined(table: FromClause, joins: Joins) -> FromClause:
    """``table`` LEFT JOIN each of ``joins`` in turn (each ON may use the ones before)."""
    joined = table
    for target, on in joins:
        joined = joined.outerjoin(target, on)
    return joined


def false_() -> ColumnElement[bool]:
    return not_(true())


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out += ["_", ch.lower()]
        else:
            out.append(ch)
    return "".join(out)


def _to_driver(stmt: Any, dialect: Dialect, keys: tuple[str, ...]) -> CompiledRead:
    """Compile once to the driver's SQL text and parameters (bind processors applied)."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    raw = compiled.construct_params()
    processors = bind_processors(compiled)
    values = {k: processors[k](v) if k in processors else v for k, v in raw.items()}
    if compiled.positional:
        return CompiledRead(str(compiled), tuple(values[k] for k in compiled.positiontup), keys)
    return CompiledRead(str(compiled), values, keys)
