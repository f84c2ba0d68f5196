"""Pulling: the records a client keeps offline, first all of them, then what changed.

A pull reads through the records service with the caller as actor, so the
row rules, masks and encrypted fields apply exactly as in ``accounts`` or an
export; fields the caller may not read are left out (the export's columns,
qiao.core.exports.columns). Changes come from the change feed
(qiao.core.records.changes), which follows commit order, so a client reading
on from its cursor never misses a committed write.

- **Initial sync** (no cursor): the feed's head is noted, then every record
  the caller reads is paged through by id, entity by entity. Writes made
  meanwhile are after the noted head, so the incremental pulls that follow
  bring them (some records may come twice; an upsert is idempotent).
- **Incremental**: the changes after the cursor, each record once at its last
  change. A record the caller reads now is an upsert, as it is now; one the
  caller cannot read (deleted, or moved out of their rules) is a tombstone,
  the same bytes either way, so a tombstone never tells whether the record
  still exists; one that was never within the caller's reach since the
  cursor is left out where the audit log can tell (:func:`qiao.core.records.held.possibly_held`).
- **resetRequired**: the caller's access (roles, team, manager, shares,
  their own user's links) or the metadata changed since the cursor, or the log
  no longer holds every change since it (pruned, or a restored database). The
  client then discards its copy and starts an initial sync.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from qiao.core.errors import BadUserInput
from qiao.core.exports.columns import Column, Names, columns_for
from qiao.core.graphql.names import enum_name
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.permissions.access import Access
from qiao.core.query import MAX_PAGE_SIZE
from qiao.core.records import changes as feed
from qiao.core.records.context import Actor
from qiao.core.records.held import possibly_held
from qiao.core.sync import cursor as cursors

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

#: The most records (or changes) one pull answers, and its default.
MAX_PULL = 1_000
DEFAULT_PULL = 500
#: The most entities one cursor follows.
MAX_ENTITIES = 50


@dataclass(frozen=True)
class SyncedRecord:
    """A record as the caller reads it: its GraphQL field names and wire values."""

    entity: str
    id: str
    version: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Tombstone:
    """A record the client must drop: deleted, or no longer readable by the caller."""

    entity: str
    id: str


@dataclass(frozen=True)
class PullPage:
    upserts: list[SyncedRecord]
    tombstones: list[Tombstone]
    cursor: str | None
    has_more: bool
    reset_required: bool


def pull(
    runtime: Runtime,
    actor: Actor,
    access: Access,
    entities: Sequence[str],
    cursor: str | None,
    first: int | None = None,
) -> PullPage:
    """One page of ``entities`` for ``actor`` after ``cursor`` (None: an initial sync)."""
    size = DEFAULT_PULL if first is None else first
    if not 1 <= size <= MAX_PULL:
        raise BadUserInput(f"first must be between 1 and {MAX_PULL}", field="first")
    names = _entities(access, entities)
    position = cursors.decode(cursor) if cursor is not None else None
    digest = cursors.access_digest(access)
    wanted = cursors.entities_digest(names)
    if position is not None and position.entities != wanted:
        raise BadUserInput(
            "this cursor was issued for other entities; keep one cursor per set of entities, "
            "or start an initial sync without a cursor",
            field="cursor",
        )

    def work(conn: Connection) -> PullPage:
        bounds = feed.bounds(conn)
        if position is None:
            start = cursors.Position(bounds.head, digest, wanted, (0, None))
            return _initial(runtime, conn, actor, access, names, start, size)
        if position.access != digest or not bounds.covers(position.since):
            return PullPage([], [], None, has_more=False, reset_required=True)
        if position.initial is not None:
            return _initial(runtime, conn, actor, access, names, position, size)
        return _incremental(runtime, conn, actor, access, names, position, size)

    return runtime.db.run_read(work, snapshot=True)


def _entities(access: Access, entities: Sequence[str]) -> list[str]:
    names = sorted(set(entities))
    if not names:
        raise BadUserInput("name at least one entity to sync", field="entities")
    if len(names) > MAX_ENTITIES:
        raise BadUserInput(f"sync at most {MAX_ENTITIES} entities", field="entities")
    registry = access.catalog.registry.entities
    for name in names:
        if name not in registry:
            raise BadUserInput(f"there is no entity {name!r}", field="entities")
        access.require(name, "read")
    return names


def _initial(
    runtime: Runtime,
    conn: Connection,
    actor: Actor,
    access: Access,
    names: list[str],
    position: cursors.Position,
    size: int,
) -> PullPage:
    assert position.initial is not None
    index, after = position.initial
    if index >= len(names):
        raise BadUserInput("this cursor is past the entities it follows", field="cursor")
    upserts: list[SyncedRecord] = []
    records = runtime.records
    while index < len(names) and len(upserts) < size:
        entity = access.catalog.entity(names[index])
        page = records.list(
            conn,
            entity.name,
            first=min(size - len(upserts), MAX_PAGE_SIZE),
            after=after,
            actor=actor,
        )
        columns = columns_for(entity, access, Names.API)
        upserts += [_synced(entity, columns, r) for r in page.records]
        if page.has_next_page:
            after = page.cursors[-1]
        else:
            index, after = index + 1, None
    if index < len(names):
        next_position = cursors.Position(
            position.since, position.access, position.entities, (index, after)
        )
        return PullPage(upserts, [], next_position.encode(), has_more=True, reset_required=False)
    done = cursors.Position(position.since, position.access, position.entities)
    pending = feed.changes_since(conn, position.since, names, limit=1)
    return PullPage(upserts, [], done.encode(), has_more=bool(pending), reset_required=False)


def _incremental(
    runtime: Runtime,
    conn: Connection,
    actor: Actor,
    access: Access,
    names: list[str],
    position: cursors.Position,
    size: int,
) -> PullPage:
    found = feed.changes_since(conn, position.since, names, limit=size)
    latest: dict[tuple[str, str], int] = {}
    for change in found:
        latest[(change.entity, change.record_id)] = change.sequence
    by_entity: dict[str, list[str]] = {}
    for entity_name, record_id in latest:
        by_entity.setdefault(entity_name, []).append(record_id)
    readable: dict[tuple[str, str], SyncedRecord] = {}
    for entity_name, ids in by_entity.items():
        entity = access.catalog.entity(entity_name)
        columns = columns_for(entity, access, Names.API)
        for start in range(0, len(ids), MAX_PAGE_SIZE):
            chunk = ids[start : start + MAX_PAGE_SIZE]
            page = runtime.records.list(
                conn, entity_name, filter={"id": {"in": chunk}}, first=len(chunk), actor=actor
            )
            for record in page.records:
                readable[(entity_name, record["id"])] = _synced(entity, columns, record)
    unreadable = [key for key in latest if key not in readable]
    held = possibly_held(conn, access, found, unreadable) if unreadable else set()
    upserts: list[SyncedRecord] = []
    tombstones: list[Tombstone] = []
    for key in sorted(latest, key=latest.__getitem__):
        if key in readable:
            upserts.append(readable[key])
        elif key in held:
            tombstones.append(Tombstone(entity=key[0], id=key[1]))
    since = found[-1].sequence if found else position.since
    next_position = cursors.Position(since, position.access, position.entities)
    return PullPage(
        upserts,
        tombstones,
        next_position.encode(),
        has_more=len(found) == size,
        reset_required=False,
    )


def synced_record(access: Access, entity: EntityDef, record: dict[str, Any]) -> SyncedRecord:
    """``record`` (read by the records service for ``access``'s caller) as a client gets it."""
    return _synced(entity, columns_for(entity, access, Names.API), record)


def _synced(entity: EntityDef, columns: list[Column], record: dict[str, Any]) -> SyncedRecord:
    fields = {c.header: wire(record.get(c.key), c.field) for c in columns}
    return SyncedRecord(
        entity=entity.name, id=record["id"], version=int(record["version"]), fields=fields
    )


def wire(value: Any, field: FieldDef | None = None) -> Any:
    """A value as GraphQL sends it: decimals and instants as exact strings, enum values
    by their names in capitals (docs/graphql.md)."""
    if field is not None and field.type is FieldType.ENUM and isinstance(value, str):
        return enum_name(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def read_one(
    runtime: Runtime, actor: Actor, access: Access, entity_name: str, record_id: str
) -> SyncedRecord | None:
    """One record as a pull would bring it, or None when the caller cannot read it."""
    entity = access.catalog.entity(entity_name)

    def work(conn: Connection) -> dict[str, Any] | None:
        return runtime.records.get(conn, entity_name, record_id, actor=actor)

    record = runtime.db.run_read(work)
    return synced_record(access, entity, record) if record is not None else None
