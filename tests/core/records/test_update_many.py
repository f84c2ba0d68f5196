"""Batch updates: the same records, audit entries, events and hook calls as one update a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.crypto import is_sealed
from qiao.core.records.batch import Created, RowsRefused
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system
from qiao.core.testing.statements import count_statements

from .test_create_many import Batches, Declares, count, create_many, rows, stored


@pytest.fixture
def plugins() -> tuple[Declares, Batches]:
    return Declares(), Batches()


@pytest.fixture
def qiao_extra_plugins(plugins: tuple[Declares, Batches]) -> Sequence[Any]:
    return plugins


def update_many(
    runtime: Runtime, writes: list[tuple[str, dict[str, Any]]], **options: Any
) -> Created:
    records = runtime.records
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        return records.update_many(ctx, "service_job", writes, **options)


def audited(runtime: Runtime) -> list[tuple[str, str]]:
    """(operation, record id) of the service jobs' audit entries, oldest first."""
    entries = system.audit_entry
    with runtime.db.read() as conn:
        found = conn.execute(
            select(entries.c.operation, entries.c.record_id)
            .where(entries.c.entity == "service_job")
            .order_by(entries.c.sequence)
        )
        return [(operation, record_id) for operation, record_id in found]


def test_a_batch_updates_what_single_updates_do(
    qiao_runtime: Runtime, plugins: tuple[Declares, Batches]
) -> None:
    declares, batches = plugins
    made = create_many(qiao_runtime, "service_job", rows(6)).records
    changes = [{"subject": f" 换主轴 {i} ", "mobile": f"1390013{i:04d}"} for i in range(3)]
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        singles = [
            records.update(ctx, "service_job", r["id"], c)
            for r, c in zip(made[:3], changes, strict=True)
        ]
    declares.calls.clear()
    batches.calls.clear()
    events_before = count(qiao_runtime, system.event)

    with count_statements(qiao_runtime.db.engine) as log:
        batch = update_many(
            qiao_runtime, [(r["id"], c) for r, c in zip(made[3:], changes, strict=True)]
        )

    assert batch.indexes == [0, 1, 2] and batch.refused == []
    keep = {"subject", "mobile", "version", "updated_by_id"}
    assert [{k: r[k] for k in keep} for r in batch.records] == [
        {k: r[k] for k in keep} for r in singles
    ]
    assert [r["subject"] for r in batch.records] == ["换主轴 0", "换主轴 1", "换主轴 2"]
    assert declares.calls == [("before", "update", 1)] * 3 + [("after", "update", 1)] * 3
    assert batches.calls == [("before", "update", 3), ("after", "update", 3)]
    assert [s for s in log.statements if s.startswith("UPDATE service_job")] != []
    assert len([s for s in log.statements if s.startswith("UPDATE service_job")]) == 1
    assert count(qiao_runtime, system.event) == events_before + 3
    assert audited(qiao_runtime)[-3:] == [("update", r["id"]) for r in made[3:]]
    for row in stored(qiao_runtime):
        assert is_sealed(row["mobile"])
    with qiao_runtime.db.read() as conn:
        found = records.list(
            conn, "service_job", filter={"mobile": {"eq": "13900130001"}}, actor=Actor.system()
        )
    assert sorted(r["id"] for r in found.records) == sorted([made[1]["id"], made[4]["id"]])


def test_a_row_that_changes_nothing_answers_its_record_and_reaches_no_after_hook(
    qiao_runtime: Runtime, plugins: tuple[Declares, Batches]
) -> None:
    made = create_many(qiao_runtime, "service_job", rows(2)).records
    plugins[1].calls.clear()
    done = update_many(qiao_runtime, [(made[0]["id"], {"hours": 0}), (made[1]["id"], {"hours": 9})])
    assert [(r["hours"], r["version"]) for r in done.records] == [(0, 1), (9, 2)]
    assert plugins[1].calls == [("before", "update", 2), ("after", "update", 1)]
    assert audited(qiao_runtime)[-1] == ("update", made[1]["id"])
    assert len(audited(qiao_runtime)) == 3


def test_every_bad_row_is_reported_by_index_and_nothing_is_written(
    qiao_runtime: Runtime,
) -> None:
    made = create_many(qiao_runtime, "service_job", rows(3)).records
    gone = "0190a8b2-0000-7000-8000-000000000000"
    writes = [
        (made[0]["id"], {"hours": 5}),
        (made[1]["id"], {"hours": -1}),
        (gone, {"hours": 1}),
        ("not-an-id", {"hours": 1}),
        (made[0]["id"], {"hours": 6}),
        (made[2]["id"], {"colour": "red"}),
    ]
    with pytest.raises(RowsRefused) as caught:
        update_many(qiao_runtime, writes)
    assert [(r.index, r.error.code, r.error.field) for r in caught.value.rows] == [
        (1, "BAD_USER_INPUT", "hours"),
        (2, "NOT_FOUND", "id"),
        (3, "BAD_USER_INPUT", "id"),
        (4, "BAD_USER_INPUT", None),
        (5, "BAD_USER_INPUT", "colour"),
    ]
    assert [r["hours"] for r in stored(qiao_runtime)] == [0, 1, 2]
    done = update_many(qiao_runtime, writes, skip_invalid=True)
    assert done.indexes == [0] and [r.index for r in done.refused] == [1, 2, 3, 4, 5]
    assert [r["hours"] for r in stored(qiao_runtime)] == [5, 1, 2]


def test_a_rule_broken_after_the_hooks_refuses_the_batch(qiao_runtime: Runtime) -> None:
    made = create_many(qiao_runtime, "service_job", rows(2)).records
    writes = [(made[0]["id"], {"hours": 3}), (made[1]["id"], {"subject": " test "})]
    with pytest.raises(RowsRefused) as caught:
        update_many(qiao_runtime, writes, skip_invalid=True)
    assert [r.index for r in caught.value.rows] == [1]
    assert [(r["hours"], r["version"]) for r in stored(qiao_runtime)] == [(0, 1), (1, 1)]
