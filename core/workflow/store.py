"""Reading the definitions and requests that apply to a write.

Every write asks whether its entity has an active pipeline or approval process.
Each process answers from the set of entities that have one, read with plain
table constructs (no catalog needed, which keeps writes working in a runtime
that has not started, such as ``qiao migrate`` seeding roles and users) and
kept for :data:`ACTIVE_TTL` seconds; a definition written in this process
clears it at once, and other processes see it within that time, as they see
metadata changes. Parsed definitions are cached by record id and version: a
definition is re-checked only when its record or the metadata changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import URL, Boolean, Connection, String, column, literal, select, table

from qiao.core.catalog import Catalog
from qiao.core.records.service import Record
from qiao.core.workflow.definitions import (
    ApprovalSpec,
    PipelineSpec,
    parse_approval_process,
    parse_pipeline,
)

Spec = TypeVar("Spec", PipelineSpec, ApprovalSpec)

_cache: dict[tuple[str, str, int, int], Any] = {}
_lock = threading.Lock()
#: Parsed definitions kept per process; far above any real number of definitions.
_CACHE_LIMIT = 1000


#: Seconds a process trusts its sets of entities with active definitions.
ACTIVE_TTL = 1.0
_active: dict[tuple[URL, str], tuple[float, frozenset[str]]] = {}


def _defined(conn: Connection, name: str, entity: str) -> bool:
    """Whether ``name`` (pipeline or approval_process) has an active row for ``entity``."""
    key = (conn.engine.url, name)
    cached = _active.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return entity in cached[1]
    t = table(name, column("entity", String), column("active", Boolean))
    entities = frozenset(
        conn.execute(select(t.c.entity).where(t.c.active.is_(True)).distinct()).scalars()
    )
    with _lock:
        _active[key] = (time.monotonic() + ACTIVE_TTL, entities)
    return entity in entities


def forget() -> None:
    """Re-read which entities have definitions on the next write (one was written)."""
    with _lock:
        _active.clear()


def _load(
    conn: Connection,
    catalog: Catalog,
    name: str,
    entity: str,
    parse: Callable[[Catalog, Record], Spec],
) -> list[Spec]:
    t = catalog.table(name)
    rows = conn.execute(
        select(t).where(t.c.entity == entity, t.c.active.is_(True)).order_by(t.c.name)
    )
    return [_parsed(catalog, name, dict(row._mapping), parse) for row in rows]


def _parsed(
    catalog: Catalog, name: str, row: Record, parse: Callable[[Catalog, Record], Spec]
) -> Spec:
    """A definition parsed once per record version and metadata version."""
    key = (name, str(row["id"]), int(row["version"]), catalog.version)
    spec: Spec | None = _cache.get(key)
    if spec is None:
        spec = parse(catalog, row)
        with _lock:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[key] = spec
    return spec


def has_pipelines(conn: Connection, entity: str) -> bool:
    return _defined(conn, "pipeline", entity)


def has_processes(conn: Connection, entity: str) -> bool:
    return _defined(conn, "approval_process", entity)


def pipelines(conn: Connection, catalog: Catalog, entity: str) -> list[PipelineSpec]:
    """The active pipelines of ``entity``, parsed."""
    return _load(conn, catalog, "pipeline", entity, parse_pipeline)


def processes(conn: Connection, catalog: Catalog, entity: str) -> list[ApprovalSpec]:
    """The active approval processes of ``entity``, parsed."""
    return _load(conn, catalog, "approval_process", entity, parse_approval_process)


def process_by_id(conn: Connection, catalog: Catalog, process_id: str) -> ApprovalSpec:
    """An approval process by id, active or not (a pending request goes on when deactivated)."""
    t = catalog.table("approval_process")
    row = conn.execute(select(t).where(t.c.id == process_id)).one()
    return _parsed(catalog, "approval_process", dict(row._mapping), parse_approval_process)


def has_pending_requests(conn: Connection, entity: str) -> bool:
    """Whether any record of ``entity`` waits for approval: one query for a whole batch,
    which then needs no lookup per record when none does."""
    t = table("approval_request", column("entity", String), column("status", String))
    found = conn.execute(
        select(literal(1)).where(t.c.entity == entity, t.c.status == "PENDING").limit(1)
    )
    return found.first() is not None


def pending_request(conn: Connection, entity: str, record_id: str) -> Record | None:
    """The pending approval request of a record, if any (plain constructs, as above)."""
    t = table(
        "approval_request",
        column("id"),
        column("entity", String),
        column("record_id", String),
        column("status", String),
        column("process_id"),
    )
    row = conn.execute(
        select(t.c.id, t.c.process_id).where(
            t.c.entity == entity, t.c.record_id == record_id, t.c.status == "PENDING"
        )
    ).first()
    return None if row is None else {"id": str(row.id), "process_id": str(row.process_id)}
