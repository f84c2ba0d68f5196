"""Shared helpers for Qiao's own tests (the fixtures come from qiao.core.testing)."""

from __future__ import annotations

import gc
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime

#: Where tests keep files for a person to look at after the run (screenshots).
ARTEFACTS = Path(
    os.environ.get("QIAO_TEST_ARTEFACTS")
    or Path(__file__).resolve().parents[1] / "build" / "test-artefacts"
)


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
            record = qiao_runtime.records.get(conn, entity, record_id, actor=Actor.system())
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


@pytest.fixture
def artefacts(request: pytest.FixtureRequest, record_property: Callable[..., None]) -> Path:
    """An empty folder of this test's under ARTEFACTS, kept after the run and listed at its end."""
    folder = ARTEFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    record_property("artefacts", str(folder))
    return folder


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection left alive (every module, its imports, the test items) out of
    the garbage collector's reach: those objects live until the run ends, and each full
    collection would otherwise walk all of them again while the tests make and drop
    runtimes, catalogs and apps by the thousand (about a tenth of a test process's CPU)."""
    gc.collect()
    gc.freeze()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    folders = {
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "artefacts"
    }
    if folders:
        terminalreporter.write_sep("-", "test artefacts")
        for folder in sorted(folders):
            terminalreporter.write_line(folder)
