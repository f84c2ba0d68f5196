"""Executing GraphQL requests: caches, the compiled fast path and the fallback.

A request is parsed and validated once per distinct document (both cached).
A query whose root fields are all generated entity fields is answered by the
SQL compiler alone: one statement, JSON built by the database, no per-field
Python. Anything else (mutations, introspection, plugin fields) runs through
strawberry, whose generated resolvers call the same compiler and records
service. The schema is rebuilt, off the event loop, when the metadata version
changes, unless a schema of the same entities was built in this process already.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import threading
import uuid
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from sqlalchemy import Connection

from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput, Forbidden, MethodNotAllowed, QiaoError
from qiao.core.graphql import admin, resolvers
from qiao.core.graphql.builder import BuiltSchema, SchemaBuilder
from qiao.core.graphql.compiler import CompiledRead, ReadCompiler
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.evaluated import Evaluator
from qiao.core.graphql.limits import MAX_QUERY_BYTES, MAX_TOKENS, check_document, check_source
from qiao.core.graphql.plan import SchemaPlan
from qiao.core.graphql.strawberry_internals import forget_type_lookups, graphql_schema
from qiao.core.graphql.trusted import TrustedDocuments
from qiao.core.graphql.withheld import occurrences
from qiao.core.lru import LRU
from qiao.core.metadata.registry import camel, type_name
from qiao.core.permissions.access import Access
from qiao.core.permissions.hiding import Hiding
from qiao.core.records.context import Actor
from qiao.core.storage.loop_reads import LoopReads

log = logging.getLogger("qiao.graphql")


def _schema_key(catalog: Catalog, types: list[tuple[str, type]], hiding: Hiding) -> Hashable:
    """What a schema is built from: every entity's declaration, the hand-written types, and
    what the roles can hide (the types' nullability follows it).

    Building takes seconds, and a new metadata version often leaves the entities as
    they were (a setting changed), so schemas are shared by this key.
    """
    return catalog.registry.declarations, tuple(types), hiding


#: Schemas built in this process (a strawberry schema and the compiler's plan; neither holds
#: a runtime or a connection), reused by every service whose catalog has the same key.
#: A schema of the standard CRM entities takes about 12 MB, so only the last few are kept.
_SCHEMAS: LRU[Hashable, tuple[strawberry.Schema, SchemaPlan]] = LRU(4)


def shared_schema(
    catalog: Catalog, plugin_types: list[tuple[str, type]], hiding: Hiding
) -> tuple[strawberry.Schema, SchemaPlan]:
    """The schema of ``catalog`` with these plugin types and roles, built once per process.

    An admin's change builds the schema of the metadata it would make before it
    is stored (a name GraphQL cannot take refuses it); the service then finds
    that schema here instead of building it again. Raises what the builder
    raises on such a name.
    """
    key = _schema_key(catalog, [*admin.core_types(), *plugin_types], hiding)
    shared = _SCHEMAS.get(key)
    if shared is None:
        shared = build_schema(catalog, plugin_types, hiding)
        _SCHEMAS.put(key, shared)
    return shared


def build_schema(
    catalog: Catalog, plugin_types: list[tuple[str, type]], hiding: Hiding
) -> tuple[strawberry.Schema, SchemaPlan]:
    """Build the schema of ``catalog`` anew, as :func:`shared_schema` does when it has none.

    Raises what the builder raises on a name GraphQL cannot take.
    """
    builder = SchemaBuilder(
        catalog,
        resolvers,
        plugin_types,
        core_types=admin.core_types(),
        schema_class=QiaoSchema,
        hiding=hiding,
    )
    try:
        with _collector_paused():
            built = builder.build()
    finally:
        forget_type_lookups()
    return built.schema, built.plan


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of a schema build.

    A build makes tens of thousands of objects (classes, fields, annotations) that
    all outlive it, so the collections they trigger find nothing to free while each
    walks everything the process holds: about a third of a build's time in a
    process that serves. Objects freed by reference counting are freed as usual;
    the collector is enabled again afterwards, unless it was off before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class QiaoSchema(strawberry.Schema):
    """Strawberry schema that logs only unexpected errors (expected ones are answers)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            if _is_unexpected(error):
                log.error("unexpected error in GraphQL execution", exc_info=error.original_error)


def _is_unexpected(error: GraphQLError) -> bool:
    """An exception Qiao did not mean to raise, from a resolver.

    Errors without a path arise before execution, while graphql-core coerces
    the request's variables (a scalar's parser refusing a value, say): they are
    the caller's input errors, whatever exception carried them.
    """
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, QiaoError | GraphQLError)
        and error.path is not None
    )


#: What callers see of a failure that is Qiao's fault; the log has the details.
INTERNAL_ERROR: dict[str, Any] = {
    "message": "internal error; the server log has the details",
    "extensions": {"code": "INTERNAL_SERVER_ERROR"},
}


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The wire form of an error: a message a person can act on and a code; no traceback."""
    original = error.original_error
    if isinstance(original, QiaoError):
        message, extensions = original.message, original.extensions()
        if "field" in extensions:
            message, extensions["field"] = api_named(message, extensions["field"])
    elif _is_unexpected(error):
        message = INTERNAL_ERROR["message"]
        extensions = dict(INTERNAL_ERROR["extensions"])
    elif original is not None:
        message = error.message
        extensions = {"code": "BAD_USER_INPUT"}
    else:
        message = error.message
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    out["extensions"] = extensions
    return out


def api_named(message: str, field: str) -> tuple[str, str]:
    """The message and field of an input error as the API names the field.

    The records service names fields as metadata does (``annual_revenue``,
    ``account.annual_revenue``), and the CLI and Python callers keep that; a
    GraphQL caller sent ``annualRevenue``, so the message says ``annualRevenue``
    (``Account.annualRevenue``, the schema coordinate, where it names the entity)
    and ``extensions.field`` says it too.
    """
    name = camel(field)

    def named(match: re.Match[str]) -> str:
        entity = match.group(1)
        return f"{type_name(entity)}.{name}" if entity else name

    pattern = rf"(?<![\w.])(?:([a-z][a-z0-9_]*)\.)?{re.escape(field)}(?!\w)"
    return re.sub(pattern, named, message), name


def error_body(error: QiaoError, path: list[Any] | None = None) -> dict[str, Any]:
    return {
        "data": None,
        "errors": [format_error(GraphQLError(error.message, path=path, original_error=error))],
    }


class GraphQLService:
    """Answers GraphQL requests for one runtime, in any thread."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._built: BuiltSchema | None = None
        self._build_lock = threading.Lock()
        self._documents: LRU[str, DocumentNode] = LRU(1000)
        self._validated: LRU[tuple[int, str], list[GraphQLError]] = LRU(1000)
        self._compiled: LRU[tuple[int, str, str, str | None, str], Any] = LRU(2000)
        settings = runtime.config.graphql
        #: The clients' trusted documents (docs/graphql.md); a bad manifest stops start-up.
        self.trusted = (
            TrustedDocuments.load(
                settings.trusted_documents, required=settings.require_trusted_documents
            )
            if settings.trusted_documents is not None
            else TrustedDocuments.none()
        )
        introspection = runtime.config.introspection_enabled
        #: Validation rules: the specified ones, less introspection where the deployment says so.
        self.rules = [
            *specified_rules,
            *([] if introspection else [NoSchemaIntrospectionCustomRule]),
        ]

    # -- Schema ---------------------------------------------------------------------------

    def schema(self) -> BuiltSchema:
        """The schema of the current metadata version and roles, rebuilt when either changed."""
        catalog = self.runtime.current()
        hiding = self.runtime.records.permissions.hiding(catalog)
        built = self._built
        if built is not None and built.catalog is catalog and built.hiding == hiding:
            return built
        with self._build_lock:
            built = self._built
            if built is not None and built.catalog is catalog and built.hiding == hiding:
                return built
            schema, plan = shared_schema(catalog, self.runtime.plugins.graphql_types(), hiding)
            built = BuiltSchema(schema=schema, plan=plan, catalog=catalog, hiding=hiding)
            self._validated.clear()
            self._compiled.clear()
            self._built = built
            return built

    # -- Execution ------------------------------------------------------------------------

    def knows(self, body: Any) -> bool:
        """Whether the body's document was parsed and validated already (cheap to answer).

        The HTTP layer runs documents not seen before one or two at a time, so
        strangers sending new, costly documents cannot take every thread and core.
        """
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or self._documents.get(query) is None:
            return False
        built = self._built
        return built is not None and self._validated.get((built.version, query)) is not None

    def execute(
        self, actor: Actor, body: Any, *, read_only: bool = False
    ) -> dict[str, Any] | bytes:
        """Answer one request body; returns JSON bytes (fast path) or a response dict.

        ``read_only`` (GraphQL over GET) runs queries only: another operation
        raises :class:`MethodNotAllowed`, answered 405 by the HTTP layer.
        """
        try:
            query, variables, operation_name = read_body(self.trusted.resolve(body))
        except QiaoError as exc:
            return error_body(exc)
        return self.execute_document(actor, query, variables, operation_name, read_only=read_only)

    def execute_document(
        self,
        actor: Actor,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None = None,
        *,
        read_only: bool = False,
    ) -> dict[str, Any] | bytes:
        """:meth:`execute` of a document already let through the trusted-documents rule, or
        made by Qiao from one that was (a subscription's read of its records, live.py)."""
        built = self.schema()
        document = self._documents.get(query)
        if document is None:
            try:
                check_source(query)  # before parsing, whose cost it bounds
                document = parse(query, max_tokens=MAX_TOKENS)
                check_document(document)  # before validation, whose cost it bounds
            except GraphQLError as exc:
                return {"data": None, "errors": [format_error(exc)]}
            except QiaoError as exc:
                return error_body(exc)
            self._documents.put(query, document)
        errors = self._validated.get((built.version, query))
        if errors is None:
            errors = validate(graphql_schema(built.schema), document, self.rules)
            self._validated.put((built.version, query), errors)
        if errors:
            return {"data": None, "errors": [format_error(e) for e in errors]}
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return error_body(
                BadUserInput("name the operation to run with operationName", field="operationName")
            )
        if read_only and operation.operation is not OperationType.QUERY:
            raise MethodNotAllowed(
                f"a {operation.operation.value} cannot be sent with GET; send it with POST"
            )
        if operation.operation is OperationType.SUBSCRIPTION:
            return error_body(
                BadUserInput(
                    "subscriptions are served over WebSocket at /graphql (docs/graphql.md)"
                )
            )
        if actor.read_only and operation.operation is not OperationType.QUERY:
            return error_body(Forbidden("this token is read-only; use a token with write scope"))
        access = self.runtime.records.permissions.access_for(actor)
        if operation.operation is OperationType.QUERY and self._compilable(built, operation):
            try:
                return self._execute_compiled(
                    built, document, operation, query, variables, operation_name, access
                )
            except QiaoError as exc:
                return error_body(exc)
            except Exception:
                log.exception("unexpected error in a compiled GraphQL query")
                return {"data": None, "errors": [INTERNAL_ERROR]}
        context = RequestContext(self.runtime, actor, built, uuid.uuid4().hex, access)
        result = built.schema.execute_sync(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
        )
        return _result_body(result)

    def _compilable(self, built: BuiltSchema, operation: OperationDefinitionNode) -> bool:
        for sel in operation.selection_set.selections:
            if not isinstance(sel, FieldNode) or sel.directives:
                return False
            if sel.name.value not in built.plan.roots:
                return False
        return True

    def _execute_compiled(
        self,
        built: BuiltSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        access: Access,
    ) -> dict[str, Any] | bytes:
        key = _compiled_key(built, access, query, operation_name, variables)
        compiled = self._compiled.get(key)
        db = self.runtime.db
        if compiled is None:
            coerced = get_variable_values(
                graphql_schema(built.schema), operation.variable_definitions or (), variables
            )
            if isinstance(coerced, list):
                return {"data": None, "errors": [format_error(e) for e in coerced]}
            fragments = {
                d.name.value: d
                for d in document.definitions
                if d.__class__.__name__ == "FragmentDefinitionNode"
            }
            records = self.runtime.records
            compiler = ReadCompiler(
                built,
                db.engine.dialect,
                fragments,
                coerced,
                access,
                records.encryption,
                records.formula_clock(),
                db=db,
            )
            fields = compiler.collect([operation.selection_set])
            roots = [(k, "Query", nodes) for k, nodes in fields.items()]
            compiled = compiler.compile(roots)
            if compiled.cacheable:
                self._compiled.put(key, compiled)

        def run(conn: Connection) -> Any:
            row = compiled.run(conn)
            if compiled.evaluated:  # formulas SQL cannot compute exactly (docs/formulas.md)
                evaluator = Evaluator(
                    conn, built.catalog, self.runtime.records.formula_clock(), access.row_scope()
                )
                row = tuple(evaluator.fill_text(v) for v in row)
            return row

        # One statement needs no transaction of its own; formulas read more in one snapshot.
        return self._answer(compiled, db.run_read(run, snapshot=compiled.evaluated))

    def ready(
        self, actor: Actor, query: str, variables: dict[str, Any], operation_name: str | None
    ) -> CompiledRead | None:
        """The compiled read answering a request (:func:`read_body`'s parts), if all it needs
        is at hand without a statement.

        The schema, the document's validation, the caller's access and the
        statement itself must all be cached, and the statement must answer
        alone (no formula evaluated in Python, which reads more). The HTTP layer
        then awaits it in the event loop (:meth:`execute_ready`); otherwise this
        is None, and :meth:`execute` in a thread answers and fills the caches.
        A query only: anything else is never compiled.
        """
        catalog = self.runtime.current_cached()
        built = self._built
        if catalog is None or built is None or built.catalog is not catalog:
            return None
        permissions = self.runtime.records.permissions
        if permissions.cached_hiding(catalog) != built.hiding:
            return None
        document = self._documents.get(query)
        if document is None or self._validated.get((built.version, query)) != []:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        access = permissions.cached_access(actor, catalog)
        if access is None:
            return None
        key = _compiled_key(built, access, query, operation_name, variables)
        compiled: CompiledRead | None = self._compiled.get(key)
        return None if compiled is None or compiled.evaluated else compiled

    async def execute_ready(
        self, compiled: CompiledRead, reads: LoopReads
    ) -> dict[str, Any] | bytes:
        """Answer with a read :meth:`ready` gave, its statement awaited on ``reads``."""
        try:
            return self._answer(compiled, await compiled.run_awaited(reads))
        except QiaoError as exc:
            return error_body(exc)
        except Exception:
            log.exception("unexpected error in a compiled GraphQL query")
            return {"data": None, "errors": [INTERNAL_ERROR]}

    def _answer(self, compiled: CompiledRead, row: Sequence[Any]) -> dict[str, Any] | bytes:
        """The response to a compiled read from its one row of JSON texts."""
        if compiled.sealed:  # encrypted fields: open them (docs/encryption.md)
            row = tuple(self.runtime.records.encryption.reveal(v) for v in row)
        if compiled.withheld:  # fields the caller may not read: an error at each place
            data = {
                k: json.loads(v) if v is not None else None
                for k, v in zip(compiled.keys, row, strict=True)
            }
            found = [
                format_error(GraphQLError(error.message, path=path, original_error=error))
                for path, error in occurrences(data, compiled.withheld)
            ]
            return {"data": data, "errors": found} if found else {"data": data}
        parts = [
            json.dumps(k).encode() + b":" + (v.encode() if v is not None else b"null")
            for k, v in zip(compiled.keys, row, strict=True)
        ]
        return b'{"data":{' + b",".join(parts) + b"}}"


def _compiled_key(
    built: BuiltSchema,
    access: Access,
    query: str,
    operation_name: str | None,
    variables: dict[str, Any],
) -> tuple[int, str, str, str | None, str]:
    """What a compiled read is cached under: one statement per caller's rules and variables."""
    return (
        built.version,
        access.key,
        query,
        operation_name,
        json.dumps(variables, sort_keys=True, default=str) if variables else "",
    )


def read_body(body: Any) -> tuple[str, dict[str, Any], str | None]:
    """The query, variables and operation name of a GraphQL request body, checked."""
    if not isinstance(body, dict):
        raise BadUserInput("the request body must be a JSON object with a 'query'")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadUserInput("the request needs a 'query' string", field="query")
    if len(query.encode()) > MAX_QUERY_BYTES:
        raise BadUserInput(f"the query is larger than {MAX_QUERY_BYTES} bytes", field="query")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise BadUserInput("'variables' must be a JSON object", field="variables")
    operation_name = body.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadUserInput("'operationName' must be a string", field="operationName")
    return query, variables, operation_name


def _result_body(result: ExecutionResult) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    return body
