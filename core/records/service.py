"""The records service: create, read, update, delete and list, for every caller.

GraphQL, the CLI, importers, connectors and automations all write through
:class:`RecordsService`, so validation, hooks (and with them audit, events and
automation) can't be bypassed. Every write runs in one transaction: a refused
write leaves nothing behind. Values are snake_case field names mapped to
Python values; relations are given and returned as ``<name>_id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from qiao.core import query
from qiao.core.actor import Actor
from qiao.core.catalog import Catalog
from qiao.core.encryption import FieldEncryption, KeyStore
from qiao.core.errors import BadUserInput, Conflict, Contended, Forbidden, NotFound, QiaoError
from qiao.core.formula.columns import ComputedColumns, computed_columns
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.evaluator import Clock as FormulaClock
from qiao.core.formula.evaluator import WorkingCalendar
from qiao.core.formula.record_values import evaluate_on_record, load_paths
from qiao.core.formula.scope import RowScope
from qiao.core.formula.validation import enforce
from qiao.core.ids import is_record_id, new_id
from qiao.core.masking import apply_mask, mask_of
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, OnDelete
from qiao.core.metadata.values import coerce, coerce_default, coerce_for_query
from qiao.core.permissions.access import Access, owner_column
from qiao.core.permissions.engine import Permissions
from qiao.core.permissions.rights import Right
from qiao.core.records.batch import Created, RowError, RowsRefused, Upserted
from qiao.core.records.context import Source, WriteContext
from qiao.core.records.upserting import external_key, upsert_rows
from qiao.core.redaction import PLAIN_TYPES, contains_sensitive
from qiao.core.storage.database import Database, transaction_cache

if TYPE_CHECKING:
    from qiao.core.records.host import RecordsHost

Record = dict[str, Any]
T = TypeVar("T")
#: How many times :meth:`RecordsService.run` runs a transaction the database keeps ending.
CONTENDED_ATTEMPTS = 3
#: Entities a caller's access is computed from (see qiao.core.permissions.subject).
ACCESS_ENTITIES = frozenset({"user", "team", "role", "role_assignment", "record_share"})
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Page:
    """One page of a list, as the Relay connection spec describes it."""

    records: list[Record]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None


@dataclass(frozen=True)
class UniqueIds:
    """The ids of records by the values of one unique field they were looked up by,
    from :meth:`RecordsService.ids_by_unique`: a file or another system names a dealer
    by its code, Qiao stores the dealer's id."""

    entity: str
    field: str
    #: Each value looked up that names a record the actor may read -> that record's id.
    ids: Mapping[Any, str]

    def id(self, value: Any, *, field: str | None = None) -> str:
        """The id of the record ``value`` names; BAD_USER_INPUT (on ``field``, the input
        that gave the value) when it names none the actor may read."""
        found = self.ids.get(value)
        if found is None:
            raise BadUserInput(f"no {self.entity} whose {self.field} is {value!r}", field=field)
        return found


class PluginHooks(Protocol):
    """The plugin hooks the service calls, as :class:`qiao.core.pluginmanager.Plugins` runs them.

    Named here rather than imported: the plugin manager sits above the records
    service in the core's layers, and the service needs only these calls.
    """

    def before_write(self, *, entity: EntityDef, **kwargs: Any) -> None: ...

    def after_write(self, *, entity: EntityDef, **kwargs: Any) -> None: ...

    def before_write_many(self, *, entity: EntityDef, **kwargs: Any) -> None: ...

    def after_write_many(self, *, entity: EntityDef, **kwargs: Any) -> None: ...

    def business_calendar(self, runtime: RecordsHost, name: str) -> WorkingCalendar: ...


class RecordsService:
    """Reads and writes records of any entity in the current metadata version."""

    def __init__(
        self,
        runtime: RecordsHost,
        db: Database,
        catalog: Callable[[], Catalog],
        plugins: PluginHooks,
        clock: Clock = utcnow,
        encryption: FieldEncryption | None = None,
    ) -> None:
        self.runtime = runtime
        self.db = db
        self._catalog = catalog
        self.plugins = plugins
        self.clock = clock
        self.permissions = Permissions(db, catalog)
        #: Seals encrypted fields on write and opens them on read (docs/encryption.md).
        self.encryption = encryption or FieldEncryption(KeyStore(db, lambda: None))

    @property
    def catalog(self) -> Catalog:
        return self._catalog()

    # -- Transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(
        self, actor: Actor, source: Source, request_id: str | None = None
    ) -> Iterator[WriteContext]:
        """A write transaction: pass the context to several calls to make them atomic.

        Its audit entries join the log's chain just before it commits
        (:meth:`~qiao.core.audit.log.AuditLog.append_many`), so it holds the
        log's head lock only for that insert and the commit.
        """
        with self.db.write() as conn:
            if request_id is None:
                yield WriteContext(actor, source, conn, self.runtime)
            else:
                yield WriteContext(actor, source, conn, self.runtime, request_id)

    def run(
        self,
        actor: Actor,
        source: Source,
        work: Callable[[WriteContext], T],
        request_id: str | None = None,
    ) -> T:
        """``work(ctx)`` in one :meth:`transaction`, run again when the database ends it to
        let a concurrent transaction through (:class:`~qiao.core.errors.Contended`).

        Two writers that lock the same records in opposite orders (a hook updating
        the parent of the record it wrote, say) make PostgreSQL end one of them;
        run again, it waits for the other and succeeds. After ``CONTENDED_ATTEMPTS``
        runs the last Contended is raised: a ``CONFLICT`` the caller may send again.
        ``work`` must do nothing outside the transaction, which it may run twice.
        """
        for attempt in range(1, CONTENDED_ATTEMPTS + 1):
            try:
                with self.transaction(actor, source, request_id) as ctx:
                    return work(ctx)
            except Contended:
                if attempt == CONTENDED_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    # -- Writes ---------------------------------------------------------------------------

    def create(self, ctx: WriteContext, entity_name: str, values: Mapping[str, Any]) -> Record:
        """Store a new record; returns it as stored. Refused input raises BAD_USER_INPUT."""
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        access = self.permissions.access_for(ctx.actor)
        access.require(entity.name, "create")
        checked = self._check_values(entity, values, creating=True)
        # Declared defaults are the declaration's, not the caller's: a read-only field with a
        # default (a status only a hook moves) does not stop the caller creating records.
        access.require_writable(entity.name, [name for name in checked if name in values])
        owner = entity.field("owner")
        owned = owner is not None and owner_column(entity) == owner.column
        if owned and ctx.actor.user_id is not None and "owner" not in checked:
            checked["owner"] = ctx.actor.user_id  # records belong to their creator by default
        before = dict(checked)
        self.plugins.before_write(
            context=ctx, entity=entity, operation="create", values=checked, existing=None
        )
        checked = self._check_values(entity, checked, creating=True, checked_before=before)
        self._check_targets(ctx.connection, catalog, entity, checked, access)
        now = self.clock()
        record_id = new_id()
        blank = {f.column: None for f in entity.stored_fields}
        self._enforce_rules(ctx.connection, catalog, entity, blank | _columns(entity, checked))
        row = self._new_row(ctx, entity, record_id, now, checked)
        self._execute(ctx.connection, entity, insert(table), row)
        self._require_scope(ctx.connection, access, entity, record_id, "create")
        record = self._fetch(ctx.connection, table, record_id, computed=True)
        assert record is not None
        changes = {name: (None, record[f.column]) for name, f in _by_name(entity, checked)}
        self._written(ctx, entity)
        self.plugins.after_write(
            context=ctx, entity=entity, operation="create", record=record, changes=changes
        )
        return record

    def create_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        skip_invalid: bool = False,
    ) -> Created:
        """Store a batch of new records of one entity, as :meth:`create` would one by one.

        Every row is checked before any is written, and every refused row is
        reported with its index (:class:`~qiao.core.records.batch.RowsRefused`,
        nothing written). With ``skip_invalid``, rows refused by their values,
        the fields the caller may write or a related record they name are left
        out and listed in ``refused`` instead; a refusal found later (by a hook,
        a validation rule, the caller's scope or a unique value) still refuses
        the whole batch, so no hook's work for a dropped row stays behind.

        The batch costs one permission check, one lookup per relation, one
        multi-row insert, one re-read, and hooks called once per batch by
        plugins implementing the batch hooks (the audit log appends every
        entry under one head lock, the outbox stores every event at once).
        Plugins implementing only the per-record hooks are called per record.
        """
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        conn = ctx.connection
        access = self.permissions.access_for(ctx.actor)
        access.require(entity.name, "create")
        owner = entity.field("owner")
        owned = owner is not None and owner_column(entity) == owner.column
        refused: list[RowError] = []
        accepted: list[tuple[int, dict[str, Any]]] = []
        writable: set[frozenset[str]] = set()
        for index, values in enumerate(rows):
            try:
                checked = self._check_values(entity, values, creating=True)
                given = frozenset(name for name in checked if name in values)
                if given not in writable:
                    access.require_writable(entity.name, list(given))
                    writable.add(given)
            except QiaoError as exc:
                refused.append(RowError(index, exc))
                continue
            if owned and ctx.actor.user_id is not None and "owner" not in checked:
                checked["owner"] = ctx.actor.user_id
            accepted.append((index, checked))
        readable = _Targets(conn, ctx.actor, access)
        refused += _refused_targets(conn, catalog, entity, accepted, readable)
        if refused and not skip_invalid:
            raise RowsRefused(sorted(refused, key=lambda r: r.index), len(rows))
        dropped = {r.index for r in refused}
        accepted = [(i, checked) for i, checked in accepted if i not in dropped]
        if not accepted:
            return Created(refused=refused)
        before = [dict(checked) for _, checked in accepted]
        self.plugins.before_write_many(
            context=ctx,
            entity=entity,
            operation="create",
            values=[checked for _, checked in accepted],
            existing=[None] * len(accepted),
        )
        late: list[RowError] = []
        stored: list[tuple[int, dict[str, Any]]] = []
        for (index, checked), seen in zip(accepted, before, strict=True):
            try:
                again = self._check_values(entity, checked, creating=True, checked_before=seen)
                stored.append((index, again))
            except QiaoError as exc:
                late.append(RowError(index, exc))
        late += _refused_targets(conn, catalog, entity, stored, readable)
        blank = {f.column: None for f in entity.stored_fields}
        for index, checked in stored:
            try:
                self._enforce_rules(conn, catalog, entity, blank | _columns(entity, checked))
            except QiaoError as exc:
                late.append(RowError(index, exc))
        if late:
            raise RowsRefused(sorted(late, key=lambda r: r.index), len(rows))
        now = self.clock()
        ids = [new_id() for _ in stored]
        inserts: dict[frozenset[str], list[dict[str, Any]]] = {}
        for record_id, (_, checked) in zip(ids, stored, strict=True):
            row = self._new_row(ctx, entity, record_id, now, checked)
            inserts.setdefault(frozenset(row), []).append(row)
        for group in inserts.values():  # executemany needs one set of columns per statement
            self._execute(conn, entity, insert(table), group)
        self._require_scope_many(conn, access, entity, ids, [i for i, _ in stored], len(rows))
        readable.created(entity, table, ids)
        records = [*self._fetch_many(conn, table, ids)]
        changes = [
            {name: (None, record[f.column]) for name, f in _by_name(entity, checked)}
            for record, (_, checked) in zip(records, stored, strict=True)
        ]
        self._written(ctx, entity)
        self.plugins.after_write_many(
            context=ctx, entity=entity, operation="create", records=records, changes=changes
        )
        return Created(records=records, indexes=[i for i, _ in stored], refused=refused)

    def update_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        writes: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        skip_invalid: bool = False,
    ) -> Created:
        """Change fields of many records of one entity, as :meth:`update` would one by one.

        ``writes`` holds each record's id and new values. Every row is checked
        before any is written and refused rows are reported by index
        (:class:`RowsRefused`, nothing written); with ``skip_invalid``, rows
        refused by their values, the fields the caller may write, a record not
        found or outside the caller's scope are left out and listed in
        ``refused``, and a refusal found later (a hook, a rule, a related record,
        a unique value) still refuses the whole batch.

        The batch costs one locked read, a scope query before and after the
        change (when the caller's update right has a scope), one lookup per
        relation, one ``UPDATE`` per set of changed columns, one re-read, and
        the write hooks once per batch (per record for plugins implementing only
        the per-record hooks). A row that changes nothing is answered with its
        record, as :meth:`update` answers it, and reaches no after-hook.
        """
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        conn = ctx.connection
        access = self.permissions.access_for(ctx.actor)
        access.require(entity.name, "update")
        refused: list[RowError] = []
        wanted = [record_id for record_id, _ in writes if is_record_id(record_id)]
        stored = self._lock_many(conn, table, wanted)
        condition = access.row_filter(entity.name, table, "update")
        inside = (
            set(wanted) if condition is None else self._ids_where(conn, table, wanted, condition)
        )
        accepted: list[tuple[int, Record, dict[str, Any]]] = []
        writable: set[frozenset[str]] = set()
        seen: set[str] = set()
        for index, (record_id, values) in enumerate(writes):
            try:
                if not is_record_id(record_id):
                    raise BadUserInput(f"{record_id!r} is not a record id", field="id")
                if record_id in seen:
                    raise BadUserInput(f"{entity.name} {record_id} is written twice in one batch")
                seen.add(record_id)
                existing = stored.get(record_id)
                if existing is None or record_id not in inside:
                    self._require_scope(conn, access, entity, record_id, "update")
                    raise NotFound(f"no {entity.name} with id {record_id}", field="id")
                _refuse_masks(entity, values, existing)
                checked = self._check_values(entity, values, creating=False, existing=existing)
                if frozenset(checked) not in writable:
                    access.require_writable(entity.name, list(checked))
                    writable.add(frozenset(checked))
            except QiaoError as exc:
                refused.append(RowError(index, exc))
                continue
            accepted.append((index, existing, checked))
        if refused and not skip_invalid:
            raise RowsRefused(refused, len(writes))
        if not accepted:
            return Created(refused=refused)
        self.plugins.before_write_many(
            context=ctx,
            entity=entity,
            operation="update",
            values=[checked for _, _, checked in accepted],
            existing=[existing for _, existing, _ in accepted],
        )
        late: list[RowError] = []
        rows: list[tuple[int, Record, dict[str, Any]]] = []
        for index, existing, checked in accepted:
            try:
                again = self._check_values(entity, checked, creating=False, existing=existing)
            except QiaoError as exc:
                late.append(RowError(index, exc))
                continue
            rows.append((index, existing, again))
        readable = _Targets(conn, ctx.actor, access)
        late += _refused_targets(conn, catalog, entity, [(i, c) for i, _, c in rows], readable)
        changed: dict[int, dict[str, Any]] = {}
        for index, existing, checked in rows:
            columns = _columns(entity, checked)
            moved = {c: v for c, v in columns.items() if existing[c] != v}
            if not moved:
                continue
            try:
                self._enforce_rules(conn, catalog, entity, existing | columns)
            except QiaoError as exc:
                late.append(RowError(index, exc))
            changed[index] = moved
        if late:
            raise RowsRefused(sorted(late, key=lambda r: r.index), len(writes))
        self._update_rows(ctx, entity, [(e, changed[i]) for i, e, _ in rows if i in changed])
        ids = [existing["id"] for _, existing, _ in rows]
        moved_ids = [existing["id"] for i, existing, _ in rows if i in changed]
        if condition is not None and moved_ids:
            outside = set(moved_ids) - self._ids_where(conn, table, moved_ids, condition)
            if outside:
                message = (
                    f"this change would move the {entity.name} out of the records you may change"
                )
                raise RowsRefused(
                    [RowError(i, Forbidden(message)) for i, e, _ in rows if e["id"] in outside],
                    len(writes),
                )
        records = self._fetch_many(conn, table, ids)
        written = [
            (record, existing, changed[index])
            for record, (index, existing, _) in zip(records, rows, strict=True)
            if index in changed
        ]
        for record, _, _ in written:
            self._written(ctx, entity, record["id"])
        if written:
            self.plugins.after_write_many(
                context=ctx,
                entity=entity,
                operation="update",
                records=[record for record, _, _ in written],
                changes=[
                    {
                        f.name: (existing[f.column], record[f.column])
                        for f in entity.stored_fields
                        if f.column in moved
                    }
                    for record, existing, moved in written
                ],
            )
        return Created(records=list(records), indexes=[i for i, _, _ in rows], refused=refused)

    def _update_rows(
        self, ctx: WriteContext, entity: EntityDef, rows: Sequence[tuple[Record, dict[str, Any]]]
    ) -> None:
        """Write each ``(stored record, changed columns)``: one ``UPDATE`` per set of columns,
        each row at its stored version (CONFLICT when one moved on)."""
        table = self.catalog.table(entity.name)
        now = self.clock()
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for existing, columns in rows:
            sealed = self.encryption.seal(ctx.connection, entity, existing["id"], columns)
            row = {
                **{f"v_{column}": value for column, value in sealed.items()},
                "k_id": existing["id"],
                "k_version": existing["version"],
                "v_version": existing["version"] + 1,
            }
            groups.setdefault(frozenset(sealed), []).append(row)
        for names, params in groups.items():
            stmt = (
                update(table)
                .where(table.c.id == bindparam("k_id"), table.c.version == bindparam("k_version"))
                .values(
                    {
                        **{column: bindparam(f"v_{column}") for column in sorted(names)},
                        "updated_at": now,
                        "updated_by_id": ctx.actor.user_id,
                        "version": bindparam("v_version"),
                    }
                )
            )
            result = self._execute(ctx.connection, entity, stmt, params)
            if ctx.connection.dialect.supports_sane_multi_rowcount and result.rowcount != len(
                params
            ):
                raise Conflict(f"a {entity.name} of this batch was changed concurrently; try again")

    def _lock_many(self, conn: Connection, table: Table, ids: Sequence[str]) -> dict[str, Record]:
        """The stored records of ``ids`` that exist, by id, locked for the transaction."""
        stmt = select(table).where(table.c.id.in_(ids))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return {row.id: self._open(table, row._mapping) for row in conn.execute(stmt)}

    @staticmethod
    def _ids_where(
        conn: Connection, table: Table, ids: Sequence[str], condition: ColumnElement[bool]
    ) -> set[str]:
        """Which of ``ids`` name a row meeting ``condition``."""
        return set(conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars())

    def update(
        self,
        ctx: WriteContext,
        entity_name: str,
        record_id: str,
        values: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> Record:
        """Change some fields of a record.

        With ``expected_version`` (the version the caller read), a record changed
        since is refused with CONFLICT and nothing is written.
        """
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        existing = self._fetch(ctx.connection, table, record_id, lock=True)
        if existing is None:
            raise NotFound(f"no {entity.name} with id {record_id}", field="id")
        access = self.permissions.access_for(ctx.actor)
        self._require_scope(ctx.connection, access, entity, record_id, "update")
        if expected_version is not None and existing["version"] != expected_version:
            raise Conflict(
                f"{entity.name} {record_id} was changed by someone else (version "
                f"{existing['version']}, you had {expected_version}); reload and try again",
                field="version",
            )
        _refuse_masks(entity, values, existing)
        checked = self._check_values(entity, values, creating=False, existing=existing)
        access.require_writable(entity.name, list(checked))
        self.plugins.before_write(
            context=ctx, entity=entity, operation="update", values=checked, existing=existing
        )
        checked = self._check_values(entity, checked, creating=False, existing=existing)
        self._check_targets(ctx.connection, catalog, entity, checked, access)
        columns = _columns(entity, checked)
        changed = {c: v for c, v in columns.items() if existing[c] != v}
        if not changed:
            return self._computed(ctx.connection, catalog, entity, existing)
        self._enforce_rules(ctx.connection, catalog, entity, existing | columns)
        result = self._execute(
            ctx.connection,
            entity,
            update(table)
            .where(table.c.id == record_id, table.c.version == existing["version"])
            .values(
                **self.encryption.seal(ctx.connection, entity, record_id, changed),
                updated_at=self.clock(),
                updated_by_id=ctx.actor.user_id,
                version=existing["version"] + 1,
            ),
        )
        if result.rowcount != 1:
            raise Conflict(f"{entity.name} {record_id} was changed concurrently; try again")
        self._require_scope(ctx.connection, access, entity, record_id, "update", moved=True)
        record = self._fetch(ctx.connection, table, record_id, computed=True)
        assert record is not None
        changes = {
            f.name: (existing[f.column], record[f.column])
            for f in entity.stored_fields
            if f.column in changed
        }
        self._written(ctx, entity, record_id)
        self.plugins.after_write(
            context=ctx, entity=entity, operation="update", record=record, changes=changes
        )
        return record

    def delete(self, ctx: WriteContext, entity_name: str, record_id: str) -> Record:
        """Delete a record, applying each referencing relation's ``on_delete`` rule."""
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        existing = self._fetch(ctx.connection, table, record_id, lock=True)
        if existing is None:
            raise NotFound(f"no {entity.name} with id {record_id}", field="id")
        access = self.permissions.access_for(ctx.actor)
        self._require_scope(ctx.connection, access, entity, record_id, "delete")
        self.plugins.before_write(
            context=ctx, entity=entity, operation="delete", values={}, existing=existing
        )
        for rev in catalog.registry.referencing(entity.name):
            self._apply_on_delete(ctx, catalog, rev.entity, rev.field, record_id)
        ctx.connection.execute(delete(table).where(table.c.id == record_id))
        changes = {f.name: (existing[f.column], None) for f in entity.stored_fields}
        self._written(ctx, entity, record_id)
        self.plugins.after_write(
            context=ctx, entity=entity, operation="delete", record=existing, changes=changes
        )
        return existing

    def _apply_on_delete(
        self, ctx: WriteContext, catalog: Catalog, child: str, field: FieldDef, target_id: str
    ) -> None:
        table = catalog.table(child)
        column = table.c[field.column]
        ids = [r[0] for r in ctx.connection.execute(select(table.c.id).where(column == target_id))]
        if not ids:
            return
        match field.on_delete:
            case OnDelete.RESTRICT:
                child_entity = catalog.entity(child)
                raise Conflict(
                    f"{len(ids)} {child_entity.plural} still refer to this record through "
                    f"{child}.{field.name}; reassign or delete them first",
                    field=field.name,
                )
            case OnDelete.CASCADE:
                for child_id in ids:
                    self.delete(ctx, child, child_id)
            case OnDelete.SET_NULL:
                for child_id in ids:
                    self.update(ctx, child, child_id, {field.name: None})

    # -- Reads ----------------------------------------------------------------------------

    def get(
        self,
        conn: Connection,
        entity_name: str,
        record_id: str,
        *,
        actor: Actor,
        lock: bool = False,
    ) -> Record | None:
        """One record by id, or None (also when ``actor`` may not read it).

        The actor is always named: ``Actor.system()`` reads every record, and
        says so at the call, so no read escapes the rules by forgetting one.

        With ``lock``, the record is held until the transaction ends, so a
        decision taken on it (one approval request per record) cannot race
        another transaction's; SQLite's single writer holds everything anyway.
        """
        if not is_record_id(record_id):
            raise BadUserInput(f"{record_id!r} is not a record id", field="id")
        catalog = self.catalog
        table = catalog.table(entity_name)
        if lock and conn.dialect.name == "postgresql":
            conn.execute(select(table.c.id).where(table.c.id == record_id).with_for_update())
        scope = self.permissions.access_for(actor).row_scope()
        computed = self._computed_columns(conn, catalog, entity_name, scope)
        stmt = _with_computed(select(table), computed).where(table.c.id == record_id)
        stmt = stmt.where(*self._read_filter(actor, entity_name, table))
        row = conn.execute(stmt).first()
        if row is None:
            return None
        record = self._evaluated(
            conn, catalog, entity_name, self._open(table, row._mapping), computed, scope
        )
        return self._masked(actor, entity_name, record)

    def require(
        self,
        conn: Connection,
        entity_name: str,
        record_id: str,
        *,
        actor: Actor,
        field: str = "id",
        lock: bool = False,
    ) -> Record:
        """One record by id as :meth:`get` reads it, or NOT_FOUND naming it at ``field``.

        For callers to whom a missing record is an error: the id a client sent, or
        a record an event names that was deleted before a worker read it.
        """
        record = self.get(conn, entity_name, record_id, actor=actor, lock=lock)
        if record is None:
            raise NotFound(f"no {entity_name} with id {record_id}", field=field)
        return record

    def _masked(self, actor: Actor, entity_name: str, record: Record) -> Record:
        """``record`` with the fields ``actor`` reads masked replaced by their masks."""
        return _apply_masks(self.permissions.access_for(actor).masks(entity_name), record)

    def _open(self, table: Table, row: RowMapping) -> Record:
        """A stored row as a record: encrypted fields opened (docs/encryption.md)."""
        return self.encryption.open(self.catalog.entity(table.name), dict(row))

    # -- Computed fields and validation rules (docs/formulas.md) -------------------------

    def formula_clock(self) -> FormulaClock:
        """TODAY() and NOW() of formulas and rules (this service's clock), and the
        business calendars WORKDAY and its kin read (docs/calendars.md)."""
        return FormulaClock(now=self.clock, calendars=self._calendar)

    def _calendar(self, name: str) -> WorkingCalendar:
        """The calendar ``name`` from the plugins: calendars are a plugin's records, read
        through this service."""
        return self.plugins.business_calendar(self.runtime, name)

    def _computed_columns(
        self, conn: Connection, catalog: Catalog, entity_name: str, scope: RowScope | None
    ) -> ComputedColumns:
        """The SQL of computed fields reading related records within ``scope`` (a reader's
        row rules; None after a write, where hooks and the audit judge the stored data)."""
        table = catalog.table(entity_name)
        return computed_columns(
            catalog, entity_name, table, conn.dialect.name, self.formula_clock(), scope=scope
        )

    def _evaluated(
        self,
        conn: Connection,
        catalog: Catalog,
        entity_name: str,
        record: Record,
        computed: ComputedColumns,
        scope: RowScope | None,
    ) -> Record:
        """``record`` with the formula fields SQL could not compute evaluated in Python."""
        for name in computed.refused:
            field = computed_fields(catalog.registry).field(entity_name, name)
            assert field.formula is not None
            record[name] = evaluate_on_record(
                conn,
                catalog,
                entity_name,
                record,
                field.formula,
                self.formula_clock(),
                scope=None if field.field.system_computed else scope,
            )
        return record

    def _computed(
        self, conn: Connection, catalog: Catalog, entity: EntityDef, record: Record
    ) -> Record:
        """A stored record with its computed fields added."""
        if not entity.computed_fields:
            return record
        found = self._fetch(conn, catalog.table(entity.name), record["id"], computed=True)
        assert found is not None
        return found

    def _enforce_rules(
        self, conn: Connection, catalog: Catalog, entity: EntityDef, after: Mapping[str, Any]
    ) -> None:
        """Refuse a write whose result breaks a validation rule (BAD_USER_INPUT naming it)."""
        rules = computed_fields(catalog.registry).rules(entity.name)
        if not rules:
            return
        paths = list(dict.fromkeys(p for r in rules for p in r.formula.fields))
        values = load_paths(conn, catalog, entity.name, after, paths)
        enforce(rules, values, self.formula_clock())

    def _written(self, ctx: WriteContext, entity: EntityDef, record_id: str | None = None) -> None:
        """Forget cached access when what it is built from changes (this process at once),
        and what the transaction knows of the record written (it may be gone, or unreadable)."""
        known = transaction_cache(ctx.connection, _KNOWN_TARGETS)
        if entity.name in ACCESS_ENTITIES:
            self.permissions.forget()
            if known:
                known.clear()
        elif known and record_id is not None:
            for targets in known.values():
                targets.discard((entity.name, str(record_id)))

    def _read_filter(
        self, actor: Actor, entity_name: str, table: Table, right: Right = "read"
    ) -> list[Any]:
        """The caller's row conditions for reading; an export also needs the ``export``
        right, and only rows inside both scopes are exported."""
        access = self.permissions.access_for(actor)
        rights: tuple[Right, ...] = ("read", "export") if right == "export" else ("read",)
        conditions = []
        for each in rights:
            access.require(entity_name, each)
            condition = access.row_filter(entity_name, table, each)
            if condition is not None:
                conditions.append(condition)
        return conditions

    def _require_scope(
        self,
        conn: Connection,
        access: Access,
        entity: EntityDef,
        record_id: str,
        right: Right,
        *,
        moved: bool = False,
    ) -> None:
        """Refuse a write to a record outside the caller's scope for ``right``.

        Checked in SQL against the stored row, so every kind of rule (own, team,
        a custom filter) means the same for writes as for reads. A record the
        caller cannot even read is reported as not found.
        """
        access.require(entity.name, right)
        table = self.catalog.table(entity.name)
        condition = access.row_filter(entity.name, table, right)
        if condition is None:
            return
        inside = conn.execute(select(table.c.id).where(table.c.id == record_id, condition)).first()
        if inside is not None:
            return
        if moved:
            raise Forbidden(
                f"this change would move the {entity.name} out of the records you may change"
            )
        if right == "create":
            raise Forbidden(f"you may not create this {entity.name}: it is outside your scope")
        readable = access.row_filter(entity.name, table, "read")
        visible = (
            readable is None
            or conn.execute(select(table.c.id).where(table.c.id == record_id, readable)).first()
        )
        if not visible:
            raise NotFound(f"no {entity.name} with id {record_id}", field="id")
        raise Forbidden(f"you may not {right} this {entity.name}")

    def list(
        self,
        conn: Connection,
        entity_name: str,
        *,
        filter: Mapping[str, Any] | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        with_total: bool = False,
        actor: Actor,
        right: Literal["read", "export"] = "read",
    ) -> Page:
        """A page of the records ``actor`` may read: filter, order and keyset cursors as in
        docs/graphql.md. ``Actor.system()`` reads every record, named at the call.

        With ``right="export"`` the page holds only records the caller may also export
        (docs/exports.md): the ``export`` right is required, and its scope applies too.
        """
        catalog = self.catalog
        entity = catalog.entity(entity_name)
        table = catalog.table(entity_name)
        window = query.Window.of(
            entity, order_by, first=first, after=after, last=last, before=before
        )
        self._require_clear(actor, entity, filter, window.ordering)
        scope = self.permissions.access_for(actor).row_scope()
        computed = self._computed_columns(conn, catalog, entity_name, scope)
        where = query.compile_filter(
            entity, table, filter, blind=self._blind_match(conn), computed=computed
        )
        where = and_(where, *self._read_filter(actor, entity_name, table, right))
        stmt = (
            _with_computed(select(table), computed)
            .where(where, window.beyond(table, computed))
            .order_by(*window.walk.clauses(table, computed))
            .limit(window.size + 1)
        )
        fetched = [dict(r._mapping) for r in conn.execute(stmt)]
        overflow = len(fetched) > window.size
        # The row past the page only tells that there is more: it is neither opened nor
        # evaluated, and the page's encrypted values are opened together.
        rows = [
            self._evaluated(conn, catalog, entity_name, r, computed, scope)
            for r in self.encryption.open_rows(entity, fetched[: window.size])
        ]
        if window.backwards:
            rows.reverse()
        cursors = [query.encode_cursor(window.ordering, r) for r in rows]
        masks = self.permissions.access_for(actor).masks(entity_name)  # once, not per row
        rows = [_apply_masks(masks, r) for r in rows]
        behind = window.cursor is not None and (
            conn.execute(
                select(table.c.id).where(where, window.behind(table, computed)).limit(1)
            ).first()
            is not None
        )
        has_next, has_previous = window.page_info(overflow=overflow, behind=behind)
        total = None
        if with_total:
            total = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
        return Page(
            records=rows,
            cursors=cursors,
            has_next_page=has_next,
            has_previous_page=has_previous,
            total_count=total,
        )

    def ids_by_unique(
        self,
        conn: Connection,
        entity_name: str,
        field_name: str,
        values: Iterable[Any],
        *,
        actor: Actor,
    ) -> UniqueIds:
        """The ids of the ``entity_name`` records whose unique (or external-id) field
        ``field_name`` has each of ``values``, read as ``actor``: a record outside the
        actor's read rules is not found, as :meth:`list` would not show it.

        One ``in`` query per 500 distinct values (the page size), however many rows
        name them, so an import or a sync resolves a page of rows in one read.
        A value that is not of the field's type names no record. A field that is
        not unique is BAD_USER_INPUT: it cannot name one record.
        """
        entity = self.catalog.entity(entity_name)
        field = entity.field(field_name)
        if (
            field is None
            or not (field.unique or field.external_id)
            or field.type is FieldType.RELATION
        ):
            raise BadUserInput(
                f"{entity_name}.{field_name} is no unique field to find {entity_name} records by",
                field=field_name,
            )
        given: dict[Any, list[Any]] = {}  # stored form -> the values given for it
        for value in values:
            try:
                stored = coerce_for_query(field, value)
            except ValueError:
                continue
            if stored is not None:
                given.setdefault(stored, []).append(value)
        sought = [forms[0] for forms in given.values()]
        ids: dict[Any, str] = {}
        for start in range(0, len(sought), query.MAX_PAGE_SIZE):
            chunk = sought[start : start + query.MAX_PAGE_SIZE]
            page = self.list(
                conn, entity_name, filter={field_name: {"in": chunk}}, first=len(chunk), actor=actor
            )
            for record in page.records:
                for value in given.get(record[field_name], ()):
                    ids[value] = record["id"]
        return UniqueIds(entity_name, field_name, ids)

    def _require_clear(
        self,
        actor: Actor,
        entity: EntityDef,
        filter: Mapping[str, Any] | None,
        ordering: query.Ordering,
    ) -> None:
        """Refuse filtering or ordering by a field ``actor`` may not read in clear.

        A filter answers whether a hidden value matches, and an order sorts by it: either
        tells the value as a read would (docs/privacy.md). A computed field needs every
        field it is computed from, as reading it does (docs/formulas.md#permissions).
        """
        access = self.permissions.access_for(actor)
        if access.is_unrestricted:
            return
        uses = [(n, "filter by") for n in sorted(query.filtered_fields(filter))]
        uses += [(k.field.name, "order by") for k in ordering.keys if k.column != "id"]
        for name, use in uses:
            access.require_clear(entity.name, name, use)

    # -- Internals ------------------------------------------------------------------------

    def _blind_match(self, conn: Connection) -> query.BlindMatch:
        """Encrypted ``eq``/``in`` filters, confirmed on ``conn`` (sees this transaction)."""

        def match(table: Any, entity: str, field: FieldDef, values: Sequence[Any]) -> list[str]:
            return self.encryption.matching(conn, table, entity, field, values)

        return match

    def _check_values(
        self,
        entity: EntityDef,
        values: Mapping[str, Any],
        *,
        creating: bool,
        existing: Record | None = None,
        checked_before: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check and normalise values by field name (``x_id`` accepted for relations).

        ``checked_before`` is what this call's ``values`` were when they last
        came out of this check (before the write hooks changed them): a plain
        value still there, the very same object, is taken as it was checked
        rather than coerced again. Required fields are checked afresh.
        """
        checked: dict[str, Any] = {}
        for key, value in values.items():
            if (
                checked_before is not None
                and type(value) in PLAIN_TYPES
                and key in checked_before
                and checked_before[key] is value
            ):
                checked[key] = value
                continue
            if key == "id":
                raise BadUserInput(
                    "ids are made by Qiao; keep another system's key in an external-id field "
                    "and find the record by it (upsert)",
                    field="id",
                )
            field = entity.field(key) or entity.field_at_column(key)
            if field is None:
                raise BadUserInput(f"{entity.name} has no field {key!r}", field=key)
            if field.formula or field.rollup:
                raise BadUserInput(f"{field.name} is computed and cannot be set", field=key)
            held = contains_sensitive(value)
            if held and not field.encrypted:
                raise BadUserInput(
                    f"{field.name}: the value is the plaintext of an encrypted field, and "
                    f"{entity.name}.{field.name} is not encrypted, so it would be stored in "
                    "clear; copy it into an encrypted field, or keep a redacted copy",
                    field=field.name,
                )
            try:
                checked[field.name] = coerce(field, value)
            except ValueError as exc:
                # A refused copy of an encrypted value must not repeat it in the error.
                reason = "the value (from an encrypted field) does not fit" if held else exc
                raise BadUserInput(f"{field.name}: {reason}", field=field.name) from None
        if creating:
            for field in entity.fields:
                if field.name not in checked and field.default is not None:
                    checked[field.name] = coerce_default(field)
        for field in entity.fields:
            if not field.required:
                continue
            if field.name in checked:
                missing = checked[field.name] is None or checked[field.name] == ""
            else:
                missing = creating or (existing is not None and existing[field.column] is None)
            if missing:
                raise BadUserInput(f"{field.name} is required", field=field.name)
        return checked

    def _check_targets(
        self,
        conn: Connection,
        catalog: Catalog,
        entity: EntityDef,
        values: Mapping[str, Any],
        access: Access,
    ) -> None:
        """Refuse a relation to a record that does not exist or the caller may not read.

        Linking a record is reading its target (a formula or a rollup over the
        relation would show it), so the target must be inside the caller's read
        scope, as Salesforce requires of a lookup. A target the caller cannot
        see is reported exactly like one that does not exist.
        """
        for field in entity.relations:
            target_id = values.get(field.name)
            if target_id is None:
                continue
            assert field.target is not None
            target = catalog.table(field.target)
            stmt = select(target.c.id).where(target.c.id == target_id)
            if field.target != "user":  # assigning a user needs no read right on users
                readable = access.row_filter(field.target, target, "read")
                if readable is not None or not access.can(field.target, "read"):
                    stmt = stmt.where(readable if readable is not None else false())
            if conn.execute(stmt).first() is None:
                raise BadUserInput(
                    f"{field.name}: no {field.target} with id {target_id}", field=field.name
                )

    def _new_row(
        self,
        ctx: WriteContext,
        entity: EntityDef,
        record_id: str,
        now: dt.datetime,
        checked: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A new record's row as inserted: system columns, values, encrypted fields sealed."""
        return {
            "id": record_id,
            "created_at": now,
            "updated_at": now,
            "created_by_id": ctx.actor.user_id,
            "updated_by_id": ctx.actor.user_id,
            "version": 1,
            **self.encryption.seal(ctx.connection, entity, record_id, _columns(entity, checked)),
        }

    def _require_scope_many(
        self,
        conn: Connection,
        access: Access,
        entity: EntityDef,
        ids: Sequence[str],
        indexes: Sequence[int],
        total: int,
    ) -> None:
        """Refuse a batch whose new records fall outside the caller's create scope, naming
        every such row (one query for the batch)."""
        table = self.catalog.table(entity.name)
        condition = access.row_filter(entity.name, table, "create")
        if condition is None:
            return
        inside = set(
            conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars()
        )
        outside = [
            RowError(
                index,
                Forbidden(f"you may not create this {entity.name}: it is outside your scope"),
            )
            for record_id, index in zip(ids, indexes, strict=True)
            if record_id not in inside
        ]
        if outside:
            raise RowsRefused(outside, total)

    def unchanged(
        self, ctx: WriteContext, entity_name: str, writes: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Sequence[Record | None]:
        """For each ``(record id, values)``: the stored record (locked for the transaction,
        with its computed fields) when :meth:`update` would accept the values and find
        nothing to change, otherwise None; in one read for all of them.

        A batch of another system's records is mostly what Qiao holds already (a
        full pull, or an overlap read again); those rows need no write, no hook and
        no savepoint. Values that do not check out, or that the actor may not write
        to the record, count as changes, so that :meth:`update` refuses them with
        its own error.
        """
        entity = self.catalog.entity(entity_name)
        table = self.catalog.table(entity_name)
        conn = ctx.connection
        access = self.permissions.access_for(ctx.actor)
        if not access.can(entity.name, "update"):
            return [None] * len(writes)
        ids = [record_id for record_id, _ in writes]
        condition = access.row_filter(entity.name, table, "update")
        inside = (
            set(ids)
            if condition is None
            else set(
                conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars()
            )
        )
        found: list[Record | None] = []
        for existing, (record_id, values) in zip(
            self._fetch_many(conn, table, ids, lock=True), writes, strict=True
        ):
            try:
                checked = self._check_values(entity, values, creating=False, existing=existing)
                access.require_writable(entity.name, list(checked))
            except QiaoError:
                found.append(None)
                continue
            same = record_id in inside and all(
                existing[column] == value for column, value in _columns(entity, checked).items()
            )
            found.append(existing if same else None)
        return found

    def _fetch_many(
        self, conn: Connection, table: Table, ids: Sequence[str], *, lock: bool = False
    ) -> Sequence[Record]:
        """Stored records by id, in the order of ``ids``, with their computed fields;
        with ``lock``, locked for the transaction (on PostgreSQL)."""
        catalog = self.catalog
        columns = self._computed_columns(conn, catalog, table.name, None)
        stmt = _with_computed(select(table), columns).where(table.c.id.in_(ids))
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=table)
        fetched = [dict(row._mapping) for row in conn.execute(stmt)]
        opened = self.encryption.open_rows(catalog.entity(table.name), fetched)
        by_id = {
            r["id"]: self._evaluated(conn, catalog, table.name, r, columns, None) for r in opened
        }
        return [by_id[record_id] for record_id in ids]

    def upsert(
        self, ctx: WriteContext, entity_name: str, key: str, values: Mapping[str, Any]
    ) -> tuple[Record, bool]:
        """Create the record whose external-id field ``key`` has ``values[key]``, or update it.

        For imports and integrations that carry another system's key. Returns the
        record and whether it was created. The lookup is the caller's: a record the
        caller may not read is not found, and creating it then meets the unique key
        (CONFLICT), as any duplicate would.
        """
        entity = self.catalog.entity(entity_name)
        external_key(entity, key)
        value = values.get(key)
        if value in (None, ""):
            raise BadUserInput(f"{key} is required to find the record by", field=key)
        found = self.list(
            ctx.connection, entity.name, filter={key: {"eq": value}}, first=1, actor=ctx.actor
        )
        if found.records:
            changes = {k: v for k, v in values.items() if k != key}
            return self.update(ctx, entity.name, found.records[0]["id"], changes), False
        return self.create(ctx, entity.name, values), True

    def upsert_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        key: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        skip_invalid: bool = False,
    ) -> Upserted:
        """:meth:`upsert` for a batch, as one upsert after another would write it: what a
        connector's page of another system's records needs (see
        :func:`~qiao.core.records.upserting.upsert_rows`)."""
        return upsert_rows(self, ctx, entity_name, key, rows, skip_invalid=skip_invalid)

    def _fetch(
        self,
        conn: Connection,
        table: Table,
        record_id: str,
        *,
        lock: bool = False,
        computed: bool = False,
    ) -> Record | None:
        """One stored record; with ``computed``, its formula and rollup fields too."""
        if not is_record_id(record_id):
            raise BadUserInput(f"{record_id!r} is not a record id", field="id")
        catalog = self.catalog
        columns = self._computed_columns(conn, catalog, table.name, None) if computed else None
        stmt = select(table) if columns is None else _with_computed(select(table), columns)
        stmt = stmt.where(table.c.id == record_id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            return None
        record = self._open(table, row._mapping)
        if columns is None:
            return record
        return self._evaluated(conn, catalog, table.name, record, columns, None)

    def _execute(
        self,
        conn: Connection,
        entity: EntityDef,
        stmt: Any,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:
        """Run a write; unique-constraint violations become CONFLICT naming the field.

        A refused write ends its transaction (PostgreSQL aborts it), which is what
        every caller wants: the whole unit of work is rolled back. Values given as
        ``params`` rather than in the statement let SQLAlchemy reuse its compiled
        form (an INSERT with values built in costs more to prepare than to run).
        """
        try:
            return conn.execute(stmt, params) if params is not None else conn.execute(stmt)
        except IntegrityError as exc:
            raise _integrity_error(entity, exc) from None


#: The transaction's cache (:func:`transaction_cache`) of relation targets known to exist
#: and be readable, by actor; ``None`` holds users, which anyone may name.
_KNOWN_TARGETS = "records.known_targets"


class _Targets:
    """The relation targets an actor is known, in this transaction, to be allowed to name,
    and the conditions to look others up: a batch's targets are looked up once per
    transaction, not once per ``create_many`` (a lead's channel, its receipt's)."""

    def __init__(self, conn: Connection, actor: Actor, access: Access) -> None:
        self.access = access
        known = transaction_cache(conn, _KNOWN_TARGETS)
        if known is None:  # outside a write transaction: known for this call alone
            known = {}
        self._readable: set[tuple[str, str]] = known.setdefault(actor, set())
        self._anyone: set[tuple[str, str]] = known.setdefault(None, set())

    def known(self, target: str) -> set[tuple[str, str]]:
        return self._anyone if target == "user" else self._readable

    def condition(self, target: str, table: Table) -> ColumnElement[bool] | None:
        """What a row of ``target`` must meet to be named; None: existing is enough."""
        if target == "user":  # assigning a user needs no read right on users
            return None
        condition = self.access.row_filter(target, table, "read")
        if condition is None and not self.access.can(target, "read"):
            return false()
        return condition

    def created(self, entity: EntityDef, table: Table, ids: Sequence[str]) -> None:
        """Records just created exist; they are known if the actor may read every row."""
        if self.condition(entity.name, table) is None:
            self.known(entity.name).update((entity.name, record_id) for record_id in ids)


def _refused_targets(
    conn: Connection,
    catalog: Catalog,
    entity: EntityDef,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    targets: _Targets,
) -> list[RowError]:
    """:meth:`RecordsService._check_targets` for a batch: one query per relation whose
    targets the transaction does not know yet, the rows naming a missing or unreadable
    record refused by index."""
    refused: list[RowError] = []
    bad: set[int] = set()
    for field in entity.relations:
        assert field.target is not None
        known = targets.known(field.target)
        wanted = {
            str(values[field.name])
            for _, values in rows
            if values.get(field.name) is not None
            and (field.target, values[field.name]) not in known
        }
        if not wanted:
            continue
        target = catalog.table(field.target)
        stmt = select(target.c.id).where(target.c.id.in_(sorted(wanted)))
        condition = targets.condition(field.target, target)
        if condition is not None:
            stmt = stmt.where(condition)
        known |= {(field.target, found) for found in conn.execute(stmt).scalars()}
        for index, values in rows:
            target_id = values.get(field.name)
            if index in bad or target_id is None or (field.target, target_id) in known:
                continue
            bad.add(index)
            message = f"{field.name}: no {field.target} with id {target_id}"
            refused.append(RowError(index, BadUserInput(message, field=field.name)))
    return refused


def _refuse_masks(entity: EntityDef, values: Mapping[str, Any], existing: Record) -> None:
    """Refuse writing a field's masked form over its value (a form sent back as it was shown).

    ``138****5678`` over ``+8613812345678`` would destroy the number while
    looking like no change; whoever writes it means "unchanged" or made a
    mistake. Checked before values are coerced, so the error says why.
    """
    for field in entity.fields:
        new = values.get(field.name, values.get(field.column))
        mask = mask_of(field)
        old = existing.get(field.column)
        if mask is None or not isinstance(new, str) or old is None or new == old:
            continue
        if new == apply_mask(mask, old):
            name = field.name
            raise BadUserInput(
                f"{name}: this is the masked form of the stored value; send the real value "
                "or leave the field out",
                field=name,
            )


def _apply_masks(masks: Mapping[str, Any], record: Record) -> Record:
    """``record`` with the columns in ``masks`` replaced by their masked forms."""
    for column, mask in masks.items():
        if column in record:
            record[column] = apply_mask(mask, record[column])
    return record


def _with_computed(stmt: Select[Any], computed: ComputedColumns) -> Select[Any]:
    """``stmt`` also selecting the computed fields SQL can compute, labelled by name."""
    return stmt.add_columns(*(sql.label(name) for name, sql in computed.columns.items()))


def _columns(entity: EntityDef, checked: Mapping[str, Any]) -> dict[str, Any]:
    return {f.column: checked[f.name] for f in entity.fields if f.name in checked}


def _by_name(entity: EntityDef, checked: Mapping[str, Any]) -> list[tuple[str, FieldDef]]:
    return [(f.name, f) for f in entity.fields if f.name in checked]


def _integrity_error(entity: EntityDef, exc: IntegrityError) -> Exception:
    text = str(exc.orig)
    for f in entity.fields:
        if f.unique and (
            f"uq_{entity.name}_{f.column}" in text or f"{entity.name}.{f.column}" in text
        ):
            return Conflict(f"another {entity.name} already has this {f.name}", field=f.name)
    if "FOREIGN KEY" in text.upper():
        return Conflict(f"{entity.name}: a related record is missing or still referenced")
    if ("id" in text and "UNIQUE" in text.upper()) or "_pkey" in text:
        return Conflict(f"a {entity.name} with this id already exists", field="id")
    return BadUserInput(f"{entity.name}: the database refused the values")
