"""Subscriptions to record changes: what one subscription reads, and how it reads it.

A subscription names an entity's change field (``contactChanged``), a filter
of the list query's filter type and optionally a cursor to resume after. Its
events come from the change feed (:mod:`qiao.core.records.changes`), whose
commit-ordered, gap-free sequence is the cursor: reading "everything after N"
never skips a change that commits later. A wake-up (:mod:`qiao.core.events.livewake`) only
says "something committed"; each subscription then reads the feed from its own
position, so nothing is lost or delivered twice, across processes too.

Each event's record is read **when it is delivered**, as the subscriber, by a
list query the subscription's own selection is copied into, through
:meth:`GraphQLService.execute_document`: the same compiled read path as any
query, so row rules, hidden fields (null with a FORBIDDEN error at their path)
and masks apply exactly as they do there. The record is read as it is at
delivery, not as it was at the change.

What a subscriber is told, per entry of the feed:

- create or update of a record it may read and that matches its filter:
  CREATED or UPDATED with the record;
- update of a record that it may not read or that does not match, which this
  subscription delivered before: REMOVED with the id only; one it never
  delivered: nothing;
- delete: DELETED with the id only (a deleted record cannot be read any
  more), when this subscription delivered the record or the subscriber may
  have held it: where its rules are all about owners, the owner the audit log
  recorded at the delete must be within its reach (or the record shared with
  it), as offline sync decides its tombstones; otherwise it is told.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_operation_ast,
    parse,
    print_ast,
    validate,
    visit,
)
from sqlalchemy import Connection

from qiao.core.errors import BadUserInput, Forbidden
from qiao.core.graphql import subscription_types
from qiao.core.graphql.limits import MAX_TOKENS, check_document, check_source
from qiao.core.graphql.service import GraphQLService, format_error, read_body
from qiao.core.graphql.strawberry_internals import graphql_schema
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.registry import camel, type_name
from qiao.core.records import changes as feed
from qiao.core.records.changes import Change
from qiao.core.records.context import Actor
from qiao.core.records.held import possibly_held

#: The feed's operations, and what a subscriber is told of each.
WRITES = {"create": "CREATED", "update": "UPDATED", "delete": "DELETED"}
#: Feed entries read at once; a subscription far behind catches up in such steps.
FEED_BATCH = 200
#: Records one read query asks for (the list's largest page).
READ_BATCH = 500
_IDS = "qiaoLiveIds"
_ROOT = "qiaoLive"
_ID = "qiaoLiveId"


def start_position(conn: Connection, after: int | None) -> int:
    """Where a subscription starts reading the feed: after ``after``, or at the head.

    A cursor whose successors were pruned from the audit log (or that the log
    never reached) is refused: replaying from it would silently skip changes.
    """
    bounds = feed.bounds(conn)
    if after is None:
        return bounds.head
    if not bounds.covers(after):
        raise BadUserInput(
            f"the changes after cursor {after} are not kept; reload the data and subscribe "
            "without 'after'",
            field="after",
        )
    return after


def next_changes(conn: Connection, after: int, entity: str) -> list[Change]:
    """The next writes of ``entity`` after sequence ``after``, at most :data:`FEED_BATCH`."""
    return feed.changes_since(conn, after, [entity], FEED_BATCH)


# -- One subscription ----------------------------------------------------------------------


@dataclass
class LiveQuery:
    """A checked subscription: its entity, where it starts, and how it reads records."""

    entity: EntityDef
    #: The response key of the root field (its alias, or ``contactChanged``).
    key: str
    #: The response keys asked of each change, with the field each stands for.
    fields: list[tuple[str, str]]
    #: The list query reading the records (their ids alone when ``record`` is not asked for).
    read: str
    variables: dict[str, Any]
    after: int | None
    #: Records this subscription delivered as visible (for REMOVED).
    seen: set[str] = field(default_factory=set)

    @property
    def record_key(self) -> str | None:
        return next((key for key, name in self.fields if name == "record"), None)

    def check(self, service: GraphQLService, actor: Actor) -> None:
        """Refuse now what would refuse every change: the entity unreadable, a filter or a
        selection the read query refuses (a filter on a field the actor may not read)."""
        self._readable(service, actor)
        self._read(service, actor, [])

    def _readable(self, service: GraphQLService, actor: Actor) -> None:
        access = service.runtime.records.permissions.access_for(actor)
        if not access.can(self.entity.name, "read"):
            raise Forbidden(f"you may not read {self.entity.name} records")

    def events(
        self, service: GraphQLService, actor: Actor, changes: Sequence[Change]
    ) -> list[dict[str, Any]]:
        """The ``next`` payloads for ``changes``, reading their records as ``actor`` now."""
        self._readable(service, actor)
        wanted = list(dict.fromkeys(c.record_id for c in changes if c.operation != "delete"))
        found: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        for start in range(0, len(wanted), READ_BATCH):
            found.update(self._read(service, actor, wanted[start : start + READ_BATCH]))
        held = self._held(service, actor, [c for c in changes if c.operation == "delete"])
        payloads = []
        for change in changes:
            operation = WRITES[change.operation]
            record: Any = None
            errors: list[dict[str, Any]] = []
            if change.operation == "delete":
                if change.record_id not in self.seen and change.record_id not in held:
                    continue
                self.seen.discard(change.record_id)
            elif change.record_id in found:
                record, errors = found[change.record_id]
                self.seen.add(change.record_id)
            elif change.record_id in self.seen:
                operation = "REMOVED"
                self.seen.discard(change.record_id)
            else:
                continue
            payload: dict[str, Any] = {"data": {self.key: self._change(change, operation, record)}}
            if errors:
                payload["errors"] = errors
            payloads.append(payload)
        return payloads

    def _held(self, service: GraphQLService, actor: Actor, deletes: list[Change]) -> set[str]:
        """The deleted records the subscriber may have held: the ones it is told of.

        Offline sync decides the same for its tombstones (core/sync/pull.py): where
        the subscriber's rules are all about owners, the owner the log recorded at
        the delete says whether the record was within reach; otherwise it was.
        """
        if not deletes:
            return set()
        runtime = service.runtime
        access = runtime.records.permissions.access_for(actor)
        keys = [(c.entity, c.record_id) for c in deletes]
        held = runtime.db.run_read(
            lambda conn: possibly_held(conn, access, deletes, keys), snapshot=True
        )
        return {record_id for _, record_id in held}

    def _change(self, change: Change, operation: str, record: Any) -> dict[str, Any]:
        values = {
            "cursor": str(change.sequence),
            "operation": operation,
            "id": change.record_id,
            "record": record,
            "__typename": f"{type_name(self.entity.name)}Change",
        }
        return {key: values[name] for key, name in self.fields}

    def _read(
        self, service: GraphQLService, actor: Actor, ids: list[str]
    ) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
        """Which of ``ids`` the actor may read and that match, with what they read of each."""
        result = service.execute_document(actor, self.read, {**self.variables, _IDS: ids})
        body = json.loads(result) if isinstance(result, bytes) else result
        data = body.get("data") or {}
        connection = data.get(_ROOT)
        if connection is None:  # refused as a whole (a filter on a field now hidden, say)
            raise ReadRefused(body.get("errors") or [])
        record_key = self.record_key
        nodes: dict[int, str] = {}
        found: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        for index, edge in enumerate(connection["edges"]):
            node = dict(edge["node"])
            record_id = str(node.pop(_ID))
            nodes[index] = record_id
            found[record_id] = (node if record_key is not None else None, [])
        for error in body.get("errors") or []:
            path = error.get("path") or []
            if len(path) >= 4 and path[1] == "edges" and path[2] in nodes:
                record_id = nodes[path[2]]
                moved = {**error, "path": [self.key, record_key, *path[4:]]}
                found[record_id][1].append(moved)
        return found


class ReadRefused(Exception):
    """The read of the changed records answered errors and no data; the subscription ends
    with these errors."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("reading the changed records was refused")
        self.errors = errors


def prepare(service: GraphQLService, payload: Any) -> LiveQuery | list[dict[str, Any]] | None:
    """Check a ``subscribe`` payload: a :class:`LiveQuery`, the GraphQL errors to send, or
    None for a query or mutation (answered as over HTTP).

    Raises :class:`~qiao.core.errors.QiaoError` for a payload that is not a GraphQL
    request at all, or a subscription Qiao cannot serve.
    """
    query, variables, operation_name = read_body(service.trusted.resolve(payload))
    built = service.schema()
    try:
        check_source(query)
        document = parse(query, max_tokens=MAX_TOKENS)
        check_document(document)
    except GraphQLError as exc:
        return [format_error(exc)]
    errors = validate(graphql_schema(built.schema), document, service.rules)
    if errors:
        return [format_error(e) for e in errors]
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise BadUserInput("name the operation to run with operationName")
    if operation.operation is not OperationType.SUBSCRIPTION:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    roots = _fields(operation.selection_set, fragments)
    if len(roots) != 1:  # validation allows one root field; a fragment could still hide two
        raise BadUserInput("a subscription selects exactly one field")
    root = roots[0]
    by_field = {
        subscription_types.field_name(e): e for e in built.catalog.registry.entities.values()
    }
    entity = by_field.get(root.name.value)
    if entity is None:
        raise BadUserInput(f"{root.name.value} is not a change subscription")
    arguments = {a.name.value: a.value for a in root.arguments or ()}
    filter_value = arguments.get("filter")
    if isinstance(filter_value, VariableNode) and variables.get(filter_value.name.value) is None:
        filter_value = None  # a filter variable left null: every record
    after = _cursor(arguments.get("after"), variables)
    selected = [
        ((f.alias or f.name).value, f.name.value) for f in _fields(root.selection_set, fragments)
    ]
    record = next(
        (f for f in _fields(root.selection_set, fragments) if f.name.value == "record"), None
    )
    read = _read_query(entity, operation, fragments, filter_value, record)
    return LiveQuery(
        entity=entity,
        key=(root.alias or root.name).value,
        fields=selected,
        read=read,
        variables=dict(variables),
        after=after,
    )


def _fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields of a selection, fragments spread in; directives are refused, since a
    change is assembled here rather than by an executor that would apply them."""
    out: list[FieldNode] = []
    for selection in selection_set.selections if selection_set else ():
        if selection.directives:
            raise BadUserInput("directives are not supported on a subscription's change fields")
        if isinstance(selection, FieldNode):
            if all(
                (f.alias or f.name).value != (selection.alias or selection.name).value for f in out
            ):
                out.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            out.extend(_fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            out.extend(_fields(fragments[selection.name.value].selection_set, fragments))
    return out


def _cursor(value: ValueNode | None, variables: Mapping[str, Any]) -> int | None:
    if isinstance(value, VariableNode):
        raw = variables.get(value.name.value)
    elif isinstance(value, StringValueNode):
        raw = value.value
    else:
        raw = None
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        raise BadUserInput("'after' must be a change's cursor", field="after")
    return int(raw)


def _read_query(
    entity: EntityDef,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    filter_value: ValueNode | None,
    record: FieldNode | None,
) -> str:
    """A list query of the entity's records by id, under the subscription's filter, selecting
    what the subscription selects of ``record``."""
    ids = f"{{id: {{in: ${_IDS}}}}}"
    condition = f"{{and: [{print_ast(filter_value)}, {ids}]}}" if filter_value else ids
    selection = ""
    if record is not None and record.selection_set is not None:
        selection = f"... on {type_name(entity.name)} {print_ast(record.selection_set)}"
    used_fragments, used_variables = _uses([n for n in (filter_value, record) if n], fragments)
    # A filter given as a whole by a variable goes where the list's `and` wants it non-null.
    whole = filter_value.name.value if isinstance(filter_value, VariableNode) else None
    definitions = [
        f"${whole}: {type_name(entity.name)}Filter!"
        if d.variable.name.value == whole
        else print_ast(d)
        for d in operation.variable_definitions or ()
        if d.variable.name.value in used_variables
    ]
    header = ", ".join([f"${_IDS}: [ID!]!", *definitions])
    text = (
        f"query QiaoLive({header}) {{ {_ROOT}: {camel(entity.plural)}(first: {READ_BATCH}, "
        f"filter: {condition}) {{ edges {{ node {{ {_ID}: id {selection} }} }} }} }}"
    )
    return "\n".join([text, *(print_ast(fragments[name]) for name in sorted(used_fragments))])


def _uses(
    nodes: Iterable[Any], fragments: Mapping[str, FragmentDefinitionNode]
) -> tuple[set[str], set[str]]:
    """The fragments ``nodes`` spread (transitively) and the variables they and those use."""
    spread: set[str] = set()
    variables: set[str] = set()
    pending = list(nodes)

    class Uses(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            variables.add(node.name.value)

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            name = node.name.value
            if name not in spread:
                spread.add(name)
                pending.append(fragments[name])

    while pending:
        visit(pending.pop(), Uses())
    return spread, variables
