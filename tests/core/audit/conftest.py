"""A deployment whose audit log is keyed as ``qiao init`` keys it, checkpointed every 5 entries
into the database and into a checkpoint file in the deployment."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core import audit
from qiao.core.audit import AuditLog, AuditSettings, Entry
from qiao.core.config import Config
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.storage import system

CHECKPOINT_EVERY = 5


@pytest.fixture
def qiao_audited_setup() -> bool:
    """The log's mechanics are tested from an empty log, keyed by the test runtime."""
    return False


@pytest.fixture
def audit_key_file(qiao_key_file: Path) -> Path:
    """The key file ``qiao init`` names for the audit log too (the session's)."""
    return qiao_key_file


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    return tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture
def qiao_config(qiao_config: Config, audit_key_file: Path, checkpoint_file: Path) -> Config:
    settings = AuditSettings(
        key_file=audit_key_file,
        checkpoint_every=CHECKPOINT_EVERY,
        checkpoint_file=checkpoint_file,
    )
    return dataclasses.replace(qiao_config, audit=settings)


@pytest.fixture
def audit_log(qiao_runtime: Runtime) -> AuditLog:
    """The log the ``audit`` plugin binds when the runtime starts."""
    qiao_runtime.start()
    log = audit.bound(qiao_runtime)
    assert log is not None
    return log


@pytest.fixture
def write(qiao_runtime: Runtime, audit_log: AuditLog) -> Callable[..., Any]:
    """``write(lambda records, ctx: ...)`` in one transaction as ``actor`` (default: system)."""
    records = qiao_runtime.records

    def _write(fn: Callable[..., Any], actor: Actor | None = None, **context: Any) -> Any:
        with records.transaction(actor or Actor.system(), Source.CLI, **context) as ctx:
            return fn(records, ctx)

    return _write


@pytest.fixture
def accounts(write: Callable[..., Any]) -> Callable[[int], list[Record]]:
    """``accounts(n)``: n accounts created one per transaction (one audit entry each)."""

    def _accounts(n: int) -> list[Record]:
        return [
            write(lambda r, ctx, i=i: r.create(ctx, "account", {"name": f"华东经销商 {i}"}))
            for i in range(n)
        ]

    return _accounts


@pytest.fixture
def entries(qiao_runtime: Runtime) -> Callable[[], list[Entry]]:
    """Every stored entry, in sequence order, read straight from the table."""

    def _entries() -> list[Entry]:
        table = system.audit_entry
        with qiao_runtime.db.read() as conn:
            rows = conn.execute(select(table).order_by(table.c.sequence)).all()
        return [Entry.of(row._mapping) for row in rows]

    return _entries
