"""Shared helpers for Qiao's own tests (the fixtures come from qiao.core.testing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime


@pytest.fixture
def create(qiao_runtime: Runtime) -> Callable[..., Record]:
    """``create("account", name=...)``: one record, written by the system in its own transaction."""
    records = qiao_runtime.records

    def _create(entity: str, **values: Any) -> Record:
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, entity, values)

    return _create


@pytest.fixture
def get(qiao_runtime: Runtime) -> Callable[[str, str], Record]:
    """``get("lead", id)``: a stored record, which must exist."""

    def _get(entity: str, record_id: str) -> Record:
        with qiao_runtime.db.read() as conn:
            record = qiao_runtime.records.get(conn, entity, record_id)
        assert record is not None
        return record

    return _get


@pytest.fixture
def count_rows(qiao_runtime: Runtime) -> Callable[[str], int]:
    """How many rows an entity's table holds, read straight from the database."""

    def _count(entity: str) -> int:
        table = qiao_runtime.current().table(entity)
        with qiao_runtime.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return _count
