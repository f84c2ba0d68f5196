"""Pushing: a batch of offline edits, each applied on its own and answered on its own.

Every edit goes through the records service with the caller as actor, in a
transaction of its own: one refused edit leaves nothing behind and does not
stop the others. Consecutive creates of one entity share one transaction and
one ``create_many`` (:func:`_creates`), answered as they would be one by one.
An edit answers

- ``APPLIED``: written; its record's id and new version;
- ``CONFLICT``: the record changed since the version the client edited (or
  deleted from), nothing written; the server's version and record come back
  so the client can merge and push again with that version;
- ``REFUSED``: not written, with the error's code, message and field
  (``FORBIDDEN``, ``BAD_USER_INPUT``, ``NOT_FOUND``, a unique value's
  ``CONFLICT`` ...), as the same mutation in GraphQL would have said.

Edits are idempotent by client mutation id: the outcome is stored with the
edit (an applied edit in the very transaction that writes it, so a crash
leaves either both or neither), and an edit whose id was answered before
answers the same again without being applied, for :data:`RETENTION` after it.
A client retries a batch whose answer it never got as it was; outcomes hold
ids, versions and errors, never field values. The record that comes with an
answer is read when answering, so a retry shows the record as it is now.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from qiao.core.errors import BadUserInput, Forbidden, NotFound, QiaoError
from qiao.core.graphql.names import stored_value
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.metadata.registry import camel
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.storage import system

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.sync")

#: The most edits one push carries.
MAX_EDITS = 100
#: How long an outcome is kept for retries.
RETENTION = dt.timedelta(days=7)
MAX_MUTATION_ID = 64


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Status(StrEnum):
    APPLIED = "APPLIED"
    CONFLICT = "CONFLICT"
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class Edit:
    """One offline edit. ``values`` are keyed by GraphQL field names (``accountId``)."""

    client_mutation_id: str
    entity: str
    operation: Operation
    id: str | None = None
    expected_version: int | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What an edit answered; stored as it is (no field values in it)."""

    client_mutation_id: str
    status: Status
    entity: str
    id: str | None = None
    version: int | None = None
    code: str | None = None
    message: str | None = None
    field: str | None = None


class _VersionConflict(Exception):
    def __init__(self, version: int) -> None:
        self.version = version


def push(
    runtime: Runtime, actor: Actor, edits: Sequence[Edit], request_id: str | None = None
) -> list[Outcome]:
    """Apply ``edits`` in order, each on its own; one outcome per edit, in the same order."""
    if actor.user_id is None:
        raise Forbidden("offline sync is for users; the system writes through the records service")
    if len(edits) > MAX_EDITS:
        raise BadUserInput(f"push at most {MAX_EDITS} edits at once", field="edits")
    _forget_old(runtime)
    outcomes: list[Outcome] = []
    for run in _runs(edits):
        if len(run) > 1:
            outcomes += _creates(runtime, actor, run, request_id)
        else:
            outcomes.append(_one(runtime, actor, run[0], request_id))
    return outcomes


def _runs(edits: Sequence[Edit]) -> Iterator[list[Edit]]:
    """The edits in order, consecutive creates of one entity (each client mutation id once)
    together: nothing between them can see the difference between creating them one by
    one and together."""
    run: list[Edit] = []
    for edit in edits:
        if run and _joins(run, edit):
            run.append(edit)
            continue
        if run:
            yield run
        run = [edit]
    if run:
        yield run


def _joins(run: Sequence[Edit], edit: Edit) -> bool:
    first = run[0]
    return (
        first.operation is Operation.CREATE
        and edit.operation is Operation.CREATE
        and edit.entity == first.entity
        and all(e.client_mutation_id != edit.client_mutation_id for e in run)
    )


def _creates(
    runtime: Runtime, actor: Actor, run: Sequence[Edit], request_id: str | None
) -> list[Outcome]:
    """Consecutive creates of one entity in one transaction and one ``create_many``.

    Each edit answers what it would alone (:func:`_one`): answered before, it
    answers the same; refused for its values or the fields the caller may
    write, it is refused (and that stored) while the others are applied, each
    applied edit's outcome stored with its record. When the batch as a whole
    is refused (a hook, a rule, the caller's scope or a unique value refusing
    a row) or fails, nothing of it stays and each edit is applied alone.
    """
    records = runtime.records
    if run[0].entity not in records.catalog.registry.entities:
        return [_one(runtime, actor, edit, request_id) for edit in run]
    entity = records.catalog.entity(run[0].entity)
    answers: dict[int, Outcome] = {}
    refused: dict[int, Outcome] = {}
    try:
        with records.transaction(actor, Source.GRAPHQL, request_id) as ctx:
            stored = _stored_many(ctx.connection, actor, [e.client_mutation_id for e in run])
            rows: list[dict[str, Any]] = []
            at: list[int] = []
            for i, edit in enumerate(run):
                if edit.client_mutation_id in stored:
                    answers[i] = stored[edit.client_mutation_id]
                    continue
                try:
                    rows.append(_create_values(entity, edit))
                    at.append(i)
                except _Unstored as exc:
                    answers[i] = _refusal(edit, exc.error)
                except QiaoError as exc:
                    refused[i] = _refusal(edit, exc)
            if rows:
                created = records.create_many(ctx, entity.name, rows, skip_invalid=True)
                for row in created.refused:
                    refused[at[row.index]] = _refusal(run[at[row.index]], row.error)
                versions = _versions_now(ctx, entity.name, created.records)
                applied = [
                    Outcome(
                        run[at[index]].client_mutation_id,
                        Status.APPLIED,
                        entity.name,
                        record["id"],
                        versions[record["id"]],
                    )
                    for record, index in zip(created.records, created.indexes, strict=True)
                ]
                _store(ctx.connection, actor, applied, records.clock())
                answers |= {at[index]: o for index, o in zip(created.indexes, applied, strict=True)}
    except Exception:  # the batch was refused whole: each edit on its own says which and why
        return [_one(runtime, actor, edit, request_id) for edit in run]
    answers |= {i: _keep(runtime, actor, outcome) for i, outcome in refused.items()}
    return [answers[i] for i in range(len(run))]


def _one(runtime: Runtime, actor: Actor, edit: Edit, request_id: str | None) -> Outcome:
    cmid = edit.client_mutation_id
    try:
        _check_mutation_id(edit)
    except _Unstored as exc:
        return _refusal(edit, exc.error)
    records = runtime.records
    try:
        with records.transaction(actor, Source.GRAPHQL, request_id) as ctx:
            stored = _stored(ctx.connection, actor, cmid)
            if stored is not None:
                return stored
            outcome = _apply(runtime, ctx, edit)
            _store(ctx.connection, actor, [outcome], records.clock())
            return outcome
    except _VersionConflict as conflict:
        found = Outcome(cmid, Status.CONFLICT, edit.entity, edit.id, conflict.version)
    except QiaoError as exc:
        found = _refusal(edit, exc)
    except Exception:
        # Not stored: the edit was not judged, so a retry must be tried again.
        log.exception("an offline edit failed unexpectedly")
        return _refusal(edit, QiaoError("the server failed on this edit; the server log says why"))
    return _keep(runtime, actor, found)


def _apply(runtime: Runtime, ctx: WriteContext, edit: Edit) -> Outcome:
    records = runtime.records
    catalog = records.catalog
    if edit.entity not in catalog.registry.entities:
        raise BadUserInput(f"there is no entity {edit.entity!r}", field="entity")
    entity = catalog.entity(edit.entity)
    cmid = edit.client_mutation_id
    if edit.operation is Operation.CREATE:
        record = records.create(ctx, entity.name, _create_values(entity, edit))
        version = _version_now(ctx, entity.name, record)
        return Outcome(cmid, Status.APPLIED, entity.name, record["id"], version)
    if edit.id is None:
        raise BadUserInput(f"{edit.operation} needs the record's id", field="id")
    if edit.expected_version is None:
        raise BadUserInput(
            f"{edit.operation} needs the version the client last read", field="expectedVersion"
        )
    current = records.get(ctx.connection, entity.name, edit.id, actor=ctx.actor, lock=True)
    if current is None:
        raise NotFound(f"no {entity.name} with id {edit.id}", field="id")
    if current["version"] != edit.expected_version:
        raise _VersionConflict(current["version"])
    if edit.operation is Operation.UPDATE:
        values = _values(entity, edit.values)
        record = records.update(ctx, entity.name, edit.id, values, edit.expected_version)
        return Outcome(
            cmid, Status.APPLIED, entity.name, edit.id, _version_now(ctx, entity.name, record)
        )
    records.delete(ctx, entity.name, edit.id)
    return Outcome(cmid, Status.APPLIED, entity.name, edit.id, current["version"])


class _Unstored(Exception):
    """An edit refused before it is judged (its client mutation id is unusable): the
    refusal is answered but not stored, so it cannot stand for another edit's."""

    def __init__(self, error: QiaoError) -> None:
        self.error = error


def _check_mutation_id(edit: Edit) -> None:
    if not 1 <= len(edit.client_mutation_id) <= MAX_MUTATION_ID:
        raise _Unstored(
            BadUserInput(
                f"a client mutation id has 1 to {MAX_MUTATION_ID} characters",
                field="clientMutationId",
            )
        )


def _create_values(entity: EntityDef, edit: Edit) -> dict[str, Any]:
    """A create's values for the records service; refused as the edit is malformed."""
    _check_mutation_id(edit)
    if edit.id is not None:
        raise BadUserInput(
            "ids are made by the server; a created record is known by its client "
            "mutation id until the answer names its id",
            field="id",
        )
    return _values(entity, edit.values)


def _versions_now(
    ctx: WriteContext, entity: str, written: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """:func:`_version_now` of a batch's records, read in one query."""
    ids = [str(r["id"]) for r in written]
    now = ctx.records.list(
        ctx.connection, entity, filter={"id": {"in": ids}}, first=len(ids), actor=ctx.actor
    )
    versions = {str(r["id"]): int(r["version"]) for r in written}
    return versions | {str(r["id"]): int(r["version"]) for r in now.records}


def _version_now(ctx: WriteContext, entity: str, written: Mapping[str, Any]) -> int:
    """The record's version as the edit's transaction leaves it: what the write hooks did
    after the write (a pipeline stage's ``on_enter`` actions) counts too, or the client's
    next edit at the answered version would be a conflict with its own edit. The
    written version if the caller cannot read the record any more."""
    now = ctx.records.get(ctx.connection, entity, written["id"], actor=ctx.actor)
    return int((now or written)["version"])


def _values(entity: EntityDef, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """GraphQL field names (``accountId``, ``annualRevenue``) to the records service's."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise BadUserInput("values is an object of field names and values", field="values")
    names: dict[str, str] = {}
    for f in entity.fields:
        names[camel(f.name)] = names[camel(f.column)] = f.name
    found: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise BadUserInput(f"{entity.name} has no field {key!r}", field=key)
        field = entity.field(names[key])
        if field is not None and field.type is FieldType.ENUM and isinstance(value, str):
            value = stored_value(field, value)
        found[names[key]] = value
    return found


def _refusal(edit: Edit, exc: QiaoError) -> Outcome:
    return Outcome(
        edit.client_mutation_id,
        Status.REFUSED,
        edit.entity,
        edit.id,
        code=exc.code,
        message=exc.message,
        field=exc.field,
    )


def _keep(runtime: Runtime, actor: Actor, outcome: Outcome) -> Outcome:
    """Store a conflict or refusal; a concurrent retry that stored first is answered instead."""
    try:
        with runtime.db.write() as conn:
            _store(conn, actor, [outcome], runtime.records.clock())
        return outcome
    except IntegrityError:
        with runtime.db.read() as conn:
            stored = _stored(conn, actor, outcome.client_mutation_id)
        return stored or outcome


def _stored(conn: Connection, actor: Actor, cmid: str) -> Outcome | None:
    table = system.sync_outcome
    text = conn.execute(
        select(table.c.outcome).where(
            table.c.user_id == actor.user_id, table.c.client_mutation_id == cmid
        )
    ).scalar()
    return None if text is None else _outcome(text)


def _stored_many(conn: Connection, actor: Actor, cmids: Sequence[str]) -> dict[str, Outcome]:
    """:func:`_stored` for several client mutation ids, in one query."""
    table = system.sync_outcome
    found = conn.execute(
        select(table.c.client_mutation_id, table.c.outcome).where(
            table.c.user_id == actor.user_id, table.c.client_mutation_id.in_(cmids)
        )
    )
    return {cmid: _outcome(text) for cmid, text in found}


def _outcome(text: str) -> Outcome:
    data = json.loads(text)
    return Outcome(**{**data, "status": Status(data["status"])})


def _store(conn: Connection, actor: Actor, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    if not outcomes:
        return
    rows = [
        {
            "user_id": actor.user_id,
            "client_mutation_id": outcome.client_mutation_id,
            "outcome": json.dumps(asdict(outcome), ensure_ascii=False, sort_keys=True),
            "created_at": now,
        }
        for outcome in outcomes
    ]
    conn.execute(insert(system.sync_outcome), rows)


def _forget_old(runtime: Runtime) -> None:
    """Drop outcomes past their retention: a retry that late is a new edit."""
    table = system.sync_outcome
    cutoff = runtime.records.clock() - RETENTION
    with runtime.db.write(durable=False) as conn:
        conn.execute(delete(table).where(table.c.created_at < cutoff))
