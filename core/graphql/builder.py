"""Generate the strawberry schema from a metadata catalog.

For an entity ``account`` (plural ``accounts``) this makes the types and root
fields of docs/graphql.md: ``Account``, ``AccountConnection``, ``AccountEdge``,
``AccountFilter``, ``AccountOrderBy``, ``AccountCreateInput``,
``AccountUpdateInput``, the queries ``account``/``accounts`` and the mutations
``createAccount``/``updateAccount``/``deleteAccount``. Plugins add root fields
through the ``qiao_graphql_types`` hook; a name defined twice is an error.

Resolvers here are thin: reads are answered by the SQL compiler (see
:mod:`qiao.core.graphql.compiler`), writes by the records service, both
reached through the request context (:mod:`qiao.core.graphql.context`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig

from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError
from qiao.core.graphql import scalars, subscription_types
from qiao.core.graphql.aggregates import AggregateTypes
from qiao.core.graphql.names import enum_name
from qiao.core.graphql.parts import (
    OrderDirection,
    PageInfo,
    describe,
    field_label,
    field_resolver,
    from_key,
    make_class,
)
from qiao.core.graphql.plan import (
    MAX_NODES,
    NODE_TYPE_KEY,
    ColumnField,
    FieldMeaning,
    RootGet,
    RootList,
    RootNode,
    RootNodes,
    SchemaPlan,
    ToManyField,
    ToOneField,
    TypenameField,
)
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.metadata.registry import camel, type_name
from qiao.core.permissions.hiding import NOTHING_HIDDEN, Hiding
from qiao.core.query import SYSTEM_QUERY_FIELDS, operators_for, queryable_fields

_SCALARS: dict[FieldType, Any] = {
    FieldType.STRING: str,
    FieldType.TEXT: str,
    FieldType.EMAIL: str,
    FieldType.PHONE: str,
    FieldType.URL: str,
    FieldType.INTEGER: int,
    FieldType.DECIMAL: scalars.Decimal,
    FieldType.BOOLEAN: bool,
    FieldType.DATE: scalars.Date,
    FieldType.DATETIME: scalars.DateTime,
    FieldType.JSON: scalars.JSON,
    FieldType.RELATION: strawberry.ID,
}
_KEYWORDS = {"in", "and", "or", "not"}


@strawberry.interface(
    description="A record of any entity. Its id is unique across the deployment, so "
    "node(id:) and nodes(ids:) find it again without being told its type."
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="The id Qiao gave the record, unique across every entity."
    )

    @staticmethod
    def resolve_type(root: Any, info: Any, abstract_type: Any) -> str:
        """The object type of a node that strawberry resolves (the compiler tags its JSON)."""
        name: str = root[NODE_TYPE_KEY]
        return name

    @staticmethod
    def is_type_of(root: Any, info: Any) -> bool:
        """Entity objects are the compiler's JSON (dicts) of the type the schema expects there."""
        return True


#: The root types' descriptions.
ROOTS = {
    "Query": "What the caller may read: records under their rules, and the deployment's metadata.",
    "Mutation": "What the caller may change: records through the records service, and metadata.",
    "Subscription": "Changes as they commit, over WebSocket, under the subscriber's rules.",
}
#: What each filter operator means, for the generated filter inputs.
OPERATOR_DESCRIPTIONS = {
    "eq": "Equal to the value.",
    "neq": "Not equal to the value (empty values do not match).",
    "in": "Equal to one of the values.",
    "nin": "Equal to none of the values (empty values do not match).",
    "lt": "Less than the value.",
    "lte": "Less than or equal to the value.",
    "gt": "Greater than the value.",
    "gte": "Greater than or equal to the value.",
    "contains": "Contains the text (case-insensitive).",
    "starts_with": "Starts with the text (case-insensitive).",
    "is_null": "Whether the value is empty (true) or set (false).",
}
#: The arguments every connection field takes.
CONNECTION_ARGUMENTS = {
    "filter": "Conditions the records must meet; fields you may not read cannot be used.",
    "order_by": "Sort keys, most significant first; the order is made total by id.",
    "first": "Page size when paging forward (50 by default, at most 500).",
    "after": "Page forward from this cursor.",
    "last": "Page size when paging backward (at most 500).",
    "before": "Page backward from this cursor.",
}


@dataclass(frozen=True)
class BuiltSchema:
    """A strawberry schema plus the plan the compiler reads, for one metadata version."""

    schema: strawberry.Schema
    plan: SchemaPlan
    catalog: Catalog
    #: What the roles could hide when it was built (its nullability follows).
    hiding: Hiding = NOTHING_HIDDEN

    @property
    def version(self) -> int:
        return self.catalog.version


class SchemaBuilder:
    """Builds one :class:`BuiltSchema`; create a new builder for every metadata version."""

    def __init__(
        self,
        catalog: Catalog,
        resolvers: Any,
        plugin_types: Sequence[tuple[str, type]] = (),
        core_types: Sequence[tuple[str, type]] = (),
        schema_class: type[strawberry.Schema] = strawberry.Schema,
        hiding: Hiding | None = None,
    ) -> None:
        self.schema_class = schema_class
        #: Required fields are non-null unless the roles can hide them (permissions/hiding.py).
        self.hiding = hiding or NOTHING_HIDDEN
        self.catalog = catalog
        self.registry = catalog.registry
        self.resolvers = resolvers
        self.plugin_types = [*core_types, *plugin_types]
        self.plan = SchemaPlan()
        self._enums: dict[tuple[str, str], Any] = {}
        self._scalar_filters: dict[str, type] = {}
        self._objects: dict[str, type] = {}
        self._connections: dict[str, type] = {}

    # -- Entry point ----------------------------------------------------------------------

    def build(self) -> BuiltSchema:
        entities = sorted(self.registry.entities.values(), key=lambda e: e.name)
        for entity in entities:
            self.plan.type_names[entity.name] = type_name(entity.name)
            self._objects[entity.name] = make_class(type_name(entity.name), {}, {}, (Node,))
            self._connections[entity.name] = make_class(
                f"{type_name(entity.name)}Connection", {}, {}
            )
        filters = {e.name: self._filter_type(e) for e in entities}
        orders = {e.name: self._order_type(e) for e in entities}
        for entity in entities:
            self._fill_object(entity, filters, orders)
            self._fill_connection(entity)
        query_ns: dict[str, Any] = {}
        mutation_ns: dict[str, Any] = {}
        subscription_ns: dict[str, Any] = {}
        for entity in entities:
            self._root_fields(entity, filters[entity.name], orders[entity.name], query_ns)
            self._mutation_fields(entity, mutation_ns)
            subscription_types.add_fields(
                entity, self._objects[entity.name], filters[entity.name], subscription_ns
            )
        self._node_fields(query_ns)
        aggregates = AggregateTypes(self)
        for entity in entities:
            aggregates.add(entity, filters[entity.name], query_ns)
        query = self._merge_roots("Query", query_ns)
        mutation = self._merge_roots("Mutation", mutation_ns)
        subscription = self._merge_roots("Subscription", subscription_ns)
        schema = self.schema_class(
            query=query,
            mutation=mutation,
            subscription=subscription,
            types=[PageInfo],
            config=StrawberryConfig(auto_camel_case=True, scalar_map=scalars.SCALAR_MAP),
        )
        return BuiltSchema(schema=schema, plan=self.plan, catalog=self.catalog, hiding=self.hiding)

    # -- Nullability ----------------------------------------------------------------------

    def _always_set(self, entity: EntityDef, field: FieldDef, *, related: bool = False) -> bool:
        """Whether every reader gets a value: required, and no role's rule can hide it.

        ``related`` asks about the related record of a relation, which the
        target's read rules may leave out too; its id is only a field.
        """
        if not field.required or field.computed or self.hiding.hides_field(entity.name, field.name):
            return False
        return not (related and field.target is not None and self.hiding.hides_rows(field.target))

    # -- Enums and scalars ----------------------------------------------------------------

    def _enum(self, entity: EntityDef, field: FieldDef) -> Any:
        key = (entity.name, field.name)
        if key not in self._enums:
            name = f"{type_name(entity.name)}{type_name(field.name)}"
            # GraphQL names enum values in capitals (``ZH_CN``) while the database keeps
            # the value the manifest wrote (``zh_CN``): see names.py. ``__picklist__``
            # lets compiler.plain turn an argument's member back into the stored value.
            members = {
                enum_name(v.value): strawberry.enum_value(
                    enum_name(v.value), description=describe(v.label, v.value)
                )
                for v in field.values
            }
            picklist = enum.Enum(name, members)  # type: ignore[misc]
            picklist.__picklist__ = field
            self._enums[key] = strawberry.enum(
                picklist, name=name, description=f"The values of {describe(field.label)}."
            )
        return self._enums[key]

    def value_type(self, entity: EntityDef, field: FieldDef | None, system: str = "") -> Any:
        """The GraphQL type of ``field``'s values (of the system column ``system`` when
        there is no field): a scalar, or the picklist's enum."""
        if field is None:
            return {"id": strawberry.ID, "version": int}.get(system, scalars.DateTime)
        if field.type is FieldType.ENUM:
            return self._enum(entity, field)
        return _SCALARS[field.type]

    def object_type(self, entity_name: str) -> type:
        """The object type of an entity's records (``Account``), filled in by :meth:`build`."""
        return self._objects[entity_name]

    # -- Filters and order ----------------------------------------------------------------

    def _operator_filter(self, name: str, value_type: Any, ops: list[str]) -> type:
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {}
        for op in ops:
            py_name = f"{op}_" if op in _KEYWORDS else op
            if op in {"in", "nin"}:
                annotations[py_name] = list[value_type] | None
            elif op == "is_null":
                annotations[py_name] = bool | None
            else:
                annotations[py_name] = value_type | None
            namespace[py_name] = strawberry.field(
                default=None, name=camel(op), description=OPERATOR_DESCRIPTIONS[op]
            )
        return strawberry.input(
            make_class(name, annotations, namespace),
            name=name,
            description="Conditions on one value; all that are given must hold.",
        )

    def field_filter(self, entity: EntityDef, column: str, field: FieldDef) -> type:
        """The filter input of one field (``StringFilter``, ``AccountStageFilter``...)."""
        ops = operators_for(field)
        if field.type is FieldType.ENUM:
            enum_type = self._enum(entity, field)
            name = f"{type_name(entity.name)}{type_name(field.name)}Filter"
            return self._operator_filter(name, enum_type, ops)
        kind = "ID" if field.type is FieldType.RELATION or column == "id" else None
        scalar = strawberry.ID if kind else _SCALARS[field.type]
        kind = (
            kind
            or {
                str: "String",
                int: "Int",
                bool: "Boolean",
                scalars.Decimal: "Decimal",
                scalars.Date: "Date",
                scalars.DateTime: "DateTime",
                scalars.JSON: "JSON",
            }[scalar]
        )
        name = f"{kind}Filter"
        if name not in self._scalar_filters:
            self._scalar_filters[name] = self._operator_filter(name, scalar, ops)
        return self._scalar_filters[name]

    def _filter_type(self, entity: EntityDef) -> type:
        name = f"{type_name(entity.name)}Filter"
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {}
        cls = make_class(name, annotations, namespace)
        for column, field in queryable_fields(entity).items():
            annotations[column] = self.field_filter(entity, column, field) | None
            namespace[column] = strawberry.field(
                default=None, description=f"Conditions on {field_label(column, field)}."
            )
        for op, text in (
            ("and", "Every one of these filters holds."),
            ("or", "At least one of these filters holds."),
        ):
            annotations[f"{op}_"] = list[cls] | None  # type: ignore[valid-type]
            namespace[f"{op}_"] = strawberry.field(default=None, name=op, description=text)
        annotations["not_"] = cls | None  # type: ignore[valid-type]
        namespace["not_"] = strawberry.field(
            default=None, name="not", description="This filter does not hold."
        )
        for key, value in namespace.items():
            setattr(cls, key, value)
        cls.__annotations__ = annotations
        plural = describe(entity.plural_label or entity.label)
        return strawberry.input(
            cls, name=name, description=f"Which {plural} to return; all conditions must hold."
        )

    def _order_type(self, entity: EntityDef) -> type:
        sortable = {
            c: f for c, f in queryable_fields(entity).items() if f.type is not FieldType.JSON
        }
        label = describe(entity.label)
        field_enum = strawberry.enum(
            enum.Enum(  # type: ignore[misc]
                f"{type_name(entity.name)}OrderField",
                {
                    enum_name(c): strawberry.enum_value(c, description=_sort_label(c, f))
                    for c, f in sortable.items()
                },
            ),
            name=f"{type_name(entity.name)}OrderField",
            description=f"The fields a {label} list can be sorted by.",
        )
        name = f"{type_name(entity.name)}OrderBy"
        return strawberry.input(
            make_class(
                name,
                {"field": field_enum, "direction": OrderDirection},
                {
                    "field": strawberry.field(description="The field to sort by."),
                    "direction": strawberry.field(
                        default=OrderDirection.ASC, description="ASC (the default) or DESC."
                    ),
                },
            ),
            name=name,
            description=f"One sort key of a {label} list.",
        )

    def _connection_args(
        self, filter_type: type, order_type: type
    ) -> dict[str, tuple[Any, Any, str]]:
        types = {
            "filter": filter_type | None,
            "order_by": list[order_type] | None,  # type: ignore[valid-type]
            "first": int | None,
            "after": str | None,
            "last": int | None,
            "before": str | None,
        }
        return {k: (t, None, CONNECTION_ARGUMENTS[k]) for k, t in types.items()}

    # -- Object types ---------------------------------------------------------------------

    def _fill_object(
        self, entity: EntityDef, filters: dict[str, type], orders: dict[str, type]
    ) -> None:
        cls = self._objects[entity.name]
        tname = type_name(entity.name)
        annotations: dict[str, Any] = {}
        meanings: dict[str, FieldMeaning] = {"__typename": TypenameField(tname)}

        def add(py_name: str, annotation: Any, meaning: FieldMeaning, **kw: Any) -> None:
            annotations[py_name] = annotation
            resolve = field_resolver(from_key, {}, annotation, root=True)
            setattr(cls, py_name, strawberry.field(resolver=resolve, **kw))
            meanings[camel(py_name)] = meaning

        add("id", strawberry.ID, ColumnField("id", None), description="The id Qiao gave it.")
        add(
            "created_at",
            scalars.DateTime,
            ColumnField("created_at", None),
            description="When it was created.",
        )
        add(
            "updated_at",
            scalars.DateTime,
            ColumnField("updated_at", None),
            description="When it last changed.",
        )
        add(
            "version",
            int,
            ColumnField("version", None),
            description="Increases with every change; send it as expectedVersion to update safely.",
        )
        for f in entity.fields:
            if f.write_only:
                continue  # set through the input types, never read back
            label = describe(f.label, f.name)
            if f.type is FieldType.RELATION:
                assert f.target is not None
                target = self._objects[f.target]
                add(
                    f.name,
                    target if self._always_set(entity, f, related=True) else target | None,
                    ToOneField(f),
                    description=label,
                )
                add(
                    f.column,
                    strawberry.ID if self._always_set(entity, f) else strawberry.ID | None,
                    ColumnField(f.column, f),
                    description=f"Id of {label}",
                )
            else:
                value_type = self.value_type(entity, f)
                add(
                    f.name,
                    value_type if self._always_set(entity, f) else value_type | None,
                    ColumnField(f.column, f),
                    description=_computed_description(f, label),
                )
        for rev in self.registry.referencing(entity.name):
            conn = self._connections[rev.entity]
            args = self._connection_args(filters[rev.entity], orders[rev.entity])
            annotations[rev.name] = conn
            setattr(
                cls,
                rev.name,
                strawberry.field(
                    resolver=field_resolver(from_key, args, conn, root=True),
                    description=describe(rev.label, rev.name),
                ),
            )
            meanings[camel(rev.name)] = ToManyField(rev)
        cls.__annotations__ = annotations
        strawberry.type(cls, name=tname, description=describe(entity.label, tname))
        self.plan.objects[tname] = (entity.name, meanings)

    def _fill_connection(self, entity: EntityDef) -> None:
        tname = type_name(entity.name)
        edge = make_class(f"{tname}Edge", {}, {})
        label = describe(entity.label, tname)
        edge.__annotations__ = {"cursor": str, "node": self._objects[entity.name]}
        for key, text in (
            ("cursor", "Where this edge is: pass it as after or before to page from here."),
            ("node", f"The {label}."),
        ):
            setattr(
                edge,
                key,
                strawberry.field(
                    resolver=field_resolver(from_key, {}, edge.__annotations__[key], root=True),
                    description=text,
                ),
            )
        strawberry.type(edge, name=f"{tname}Edge", description=f"One {label} in a page.")
        conn = self._connections[entity.name]
        conn.__annotations__ = {"edges": list[edge], "page_info": PageInfo, "total_count": int}  # type: ignore[valid-type]
        texts = {
            "edges": "The page, in order.",
            "page_info": "Where the page lies in the whole list.",
            "total_count": "How many records the whole list holds (costs a count; ask only "
            "when shown).",
        }
        for key, annotation in conn.__annotations__.items():
            setattr(
                conn,
                key,
                strawberry.field(
                    resolver=field_resolver(from_key, {}, annotation, root=True),
                    description=texts[key],
                ),
            )
        strawberry.type(conn, name=f"{tname}Connection", description=f"A page of {label} records.")

    # -- Root fields ----------------------------------------------------------------------

    def _root_fields(
        self, entity: EntityDef, filter_type: type, order_type: type, ns: dict[str, Any]
    ) -> None:
        obj = self._objects[entity.name]
        conn = self._connections[entity.name]
        ns[entity.name] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.read_root,
                {"id": (strawberry.ID, strawberry.UNSET, "Its id.")},
                obj | None,
            ),
            description=f"One {describe(entity.label)} by id, or null.",
        )
        ns[entity.plural] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.read_root, self._connection_args(filter_type, order_type), conn
            ),
            description=f"{describe(entity.plural_label or entity.label)}, paginated.",
        )
        self.plan.roots[camel(entity.name)] = RootGet(entity.name)
        self.plan.roots[camel(entity.plural)] = RootList(entity.name)

    def _node_fields(self, ns: dict[str, Any]) -> None:
        """``node(id:)`` and ``nodes(ids:)``, which find records of any entity by id."""
        ns["node"] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.read_root,
                {"id": (strawberry.ID, strawberry.UNSET, "A record id.")},
                Node | None,
            ),
            description="The record with this id, whatever its entity; null when there is none "
            "or you may not read it.",
        )
        ns["nodes"] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.read_root,
                {
                    "ids": (
                        list[strawberry.ID],
                        strawberry.UNSET,
                        f"At most {MAX_NODES} record ids.",
                    )
                },
                list[Node | None],
            ),
            description="The records with these ids, in the same order and as many; null in "
            "place of a record there is none of or you may not read.",
        )
        self.plan.roots["node"] = RootNode()
        self.plan.roots["nodes"] = RootNodes()

    def _input_type(self, entity: EntityDef, creating: bool) -> type:
        suffix = "CreateInput" if creating else "UpdateInput"
        name = f"{type_name(entity.name)}{suffix}"
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {}
        for f in entity.fields:
            if f.formula or f.rollup:
                continue
            value_type = self.value_type(entity, f)
            needed = creating and f.required and f.default is None
            annotations[f.column] = value_type if needed else value_type | None
            namespace[f.column] = (
                strawberry.field(default=strawberry.UNSET, description=describe(f.label, f.name))
                if not needed
                else strawberry.field(description=describe(f.label, f.name))
            )
        label = describe(entity.label, name)
        text = (
            f"A new {label}: required fields must be given, defaults fill the rest."
            if creating
            else f"Changes to a {label}: fields left out stay as they are, null clears one."
        )
        return strawberry.input(
            make_class(name, annotations, namespace), name=name, description=text
        )

    def _mutation_fields(self, entity: EntityDef, ns: dict[str, Any]) -> None:
        tname = type_name(entity.name)
        obj = self._objects[entity.name]
        create_input = self._input_type(entity, creating=True)
        update_input = self._input_type(entity, creating=False)
        label = describe(entity.label, tname)
        ns[f"create_{entity.name}"] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.create,
                {"input": (create_input, strawberry.UNSET, "Its fields.")},
                obj,
            ),
            description=f"Create a {label}; you become its owner unless the input names one.",
        )
        ns[f"update_{entity.name}"] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.update,
                {
                    "id": (strawberry.ID, strawberry.UNSET, "The record to change."),
                    "input": (update_input, strawberry.UNSET, "The fields to change."),
                    "expected_version": (
                        int | None,
                        None,
                        "The version you read: if it changed since, nothing is written and "
                        "the answer is CONFLICT.",
                    ),
                },
                obj,
            ),
            description=f"Change a {label}.",
        )
        ns[f"delete_{entity.name}"] = strawberry.field(
            resolver=field_resolver(
                self.resolvers.delete,
                {"id": (strawberry.ID, strawberry.UNSET, "The record to delete.")},
                strawberry.ID,
            ),
            description=f"Delete a {label}; returns its id. Relations to it follow their "
            "on_delete rule.",
        )
        for op in ("create", "update", "delete"):
            self.plan.mutations[f"{op}{tname}"] = (op, entity.name)
        keys = [f.name for f in entity.fields if f.external_id]
        if keys:
            key_enum = strawberry.enum(
                enum.Enum(  # type: ignore[misc]
                    f"{tname}ExternalKey",
                    {
                        enum_name(k): strawberry.enum_value(
                            k, description=describe(entity.field(k).label, k)
                        )
                        for k in keys
                    },
                ),
                name=f"{tname}ExternalKey",
                description=f"The external-id fields a {tname} is found by in upsert{tname}.",
            )
            ns[f"upsert_{entity.name}"] = strawberry.field(
                resolver=field_resolver(
                    self.resolvers.upsert,
                    {
                        "key": (key_enum, strawberry.UNSET, "The field that identifies it."),
                        "input": (
                            create_input,
                            strawberry.UNSET,
                            "Its fields, the key's included.",
                        ),
                    },
                    obj,
                ),
                description=(
                    f"Create the {tname} whose external-id field `key` has the value in "
                    "`input`, or update the one that has it (imports and integrations)."
                ),
            )
            self.plan.mutations[f"upsert{tname}"] = ("upsert", entity.name)

    def _merge_roots(self, name: str, generated: dict[str, Any]) -> type:
        owners = {camel(key): "generated from metadata" for key in generated}
        bases = []
        for plugin, cls in self.plugin_types:
            if (
                cls.__name__ != name
                and getattr(cls, "__strawberry_definition__", None)
                and cls.__strawberry_definition__.name != name
            ):  # type: ignore[attr-defined]
                continue
            definition = getattr(cls, "__strawberry_definition__", None)
            if definition is None:
                raise ConfigurationError(
                    f"plugin {plugin!r} returned {cls!r}, not a strawberry type"
                )
            for f in definition.fields:
                graphql_name = f.graphql_name or camel(f.python_name)
                if graphql_name in owners:
                    raise ConfigurationError(
                        f"{name}.{graphql_name} is defined by both {owners[graphql_name]} "
                        f"and plugin {plugin!r}"
                    )
                owners[graphql_name] = f"plugin {plugin!r}"
            bases.append(cls)
        generated_cls = make_class(f"Generated{name}", {}, generated)
        for key, value in generated.items():
            setattr(generated_cls, key, value)
        generated_cls = strawberry.type(generated_cls, name=name)
        return strawberry.type(
            type(name, (generated_cls, *bases), {}), name=name, description=ROOTS[name]
        )


#: How a sort key names the columns every entity has (their labels are their names).
_SYSTEM_SORT_LABELS = {
    "id": "Its id (the order of creation)",
    "created_at": "When it was created",
    "updated_at": "When it last changed",
}


def _sort_label(column: str, field: FieldDef) -> str:
    """A sort key's description, capitalised as every description in the schema is."""
    if column in _SYSTEM_SORT_LABELS and field is SYSTEM_QUERY_FIELDS.get(column):
        return f"{_SYSTEM_SORT_LABELS[column]}."
    text = field_label(column, field)
    return f"{text[:1].upper()}{text[1:]}."


def _computed_description(field: FieldDef, label: str) -> str:
    """A field's label; for a computed field also how it is computed (read-only)."""
    if field.formula is not None:
        return f"{label} (formula, read-only): {field.formula}"
    if field.rollup is not None:
        return f"{label} (rollup, read-only)"
    return label
