"""Upgrading law_firms from 0.1.0: matters written before walls existed stay in sight."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import text

from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "law_firms")


def test_matters_of_0_1_0_are_unwalled_and_unchecked_after_the_upgrade(
    qiao_runtime: Runtime,
) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        client = records.create(ctx, "account", {"name": "旧版客户有限公司"})
        matter = records.create(
            ctx,
            "matter",
            {"matter_number": "OLD-1", "title": "旧案", "client": client["id"],
             "practice_area": "LITIGATION"},
        )  # fmt: skip
    # As 0.1.0 left it: no wall flag, no conflict status, and its version recorded.
    with qiao_runtime.db.write() as conn:
        conn.execute(text("UPDATE matter SET walled = NULL, conflict_status = NULL"))
        conn.execute(text("UPDATE qiao_package SET version = '0.1.0' WHERE name = 'law_firms'"))
    plan = qiao_runtime.migrate().plan.render()
    assert "migrated law_firms from 0.1.0 to 0.2.0" in plan
    with qiao_runtime.db.read() as conn:
        upgraded = records.get(conn, "matter", matter["id"], actor=Actor.system())
    assert upgraded is not None
    assert (upgraded["walled"], upgraded["conflict_status"]) == (False, "NOT_CHECKED")
