"""Helpers for the workflow tests: writes by the system or by a named user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime

Write = Callable[..., Record]


@pytest.fixture
def define(qiao_runtime: Runtime) -> Callable[[str, dict[str, Any]], Record]:
    """``define("pipeline", {...})``: a record whose fields clash with helper arguments."""

    def _define(entity: str, values: dict[str, Any]) -> Record:
        records = qiao_runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, entity, values)

    return _define


@pytest.fixture
def update(qiao_runtime: Runtime) -> Write:
    """``update("quote", id, status=..., actor=user)``: as the system unless an actor is given."""

    def _update(entity: str, record_id: str, actor: Actor | None = None, **values: Any) -> Record:
        records = qiao_runtime.records
        with records.transaction(actor or Actor.system(), Source.SYSTEM) as ctx:
            return records.update(ctx, entity, record_id, values)

    return _update
