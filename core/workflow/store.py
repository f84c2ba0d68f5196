"""Reading the definitions and requests that apply to a write.

Every write asks whether its entity has an active pipeline or approval process,
so the first question is one cheap indexed query on the entity's name, made
with plain table constructs: it needs no catalog, which keeps writes working
in a runtime that has not started (``qiao migrate`` seeding roles and users)
as long as no definitions exist. Parsed definitions are cached by record id and
version: a definition is re-checked only when its record or the metadata changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Boolean, Connection, String, and_, column, select, table

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


def _defined(conn: Connection, name: str, entity: str) -> bool:
    """Whether ``name`` (pipeline or approval_process) has an active row for ``entity``."""
    t = table(name, column("id"), column("entity", String), column("active", Boolean))
    stmt = select(t.c.id).where(and_(t.c.entity == entity, t.c.active.is_(True))).limit(1)
    return conn.execute(stmt).first() is not None


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
