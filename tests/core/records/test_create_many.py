"""Batch creates: the same records, audit entries, events and hook calls as one create a row."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from qiao.core import audit
from qiao.core.crypto import is_sealed
from qiao.core.encryption import index_column
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.batch import RowsRefused
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system
from qiao.core.testing.statements import count_statements

MANIFEST: dict[str, Any] = {
    "entities": [
        {
            "name": "service_job",
            "plural": "service_jobs",
            "label": {"en": "Service job", "zh-CN": "服务单"},
            "fields": [
                {
                    "name": "number",
                    "label": {"zh-CN": "number"},
                    "type": "string",
                    "unique": True,
                    "max_length": 20,
                },
                {
                    "name": "subject",
                    "label": {"zh-CN": "subject"},
                    "type": "string",
                    "required": True,
                },
                {"name": "hours", "label": {"zh-CN": "hours"}, "type": "integer", "min": 0},
                {
                    "name": "mobile",
                    "label": {"zh-CN": "mobile"},
                    "type": "phone",
                    "encrypted": True,
                    "searchable": "exact",
                },
                {
                    "name": "account",
                    "label": {"zh-CN": "account"},
                    "type": "relation",
                    "target": "account",
                },
            ],
            "validation_rules": [
                {"name": "no_test", "formula": 'subject <> "test"', "message": "不能叫 test"}
            ],
        },
        {
            "name": "service_visit",
            "plural": "service_visits",
            "label": {"en": "Service visit", "zh-CN": "上门服务"},
            "fields": [
                {"name": "task", "label": {"zh-CN": "task"}, "type": "string"},
                {
                    "name": "account",
                    "label": {"zh-CN": "account"},
                    "type": "relation",
                    "target": "account",
                },
                {
                    "name": "summary",
                    "label": {"zh-CN": "summary"},
                    "type": "string",
                    "formula": 'account.name & "：" & task',
                },
            ],
        },
    ],
    "numbering": [{"entity": "service_job", "field": "number", "pattern": "SJ-{seq:6}"}],
}


class Declares:
    """The service job entity and a record of every write hook call it receives."""

    __name__ = "create_many_fixture"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest(MANIFEST, self.__name__, "service_job.yaml")]

    @hookimpl(entities=["service_job"])
    def qiao_before_record_write(self, operation: str, values: dict[str, Any]) -> None:
        if "subject" in values:
            values["subject"] = values["subject"].strip()
        self.calls.append(("before", operation, 1))

    @hookimpl(entities=["service_job"])
    def qiao_after_record_write(self, operation: str, record: dict[str, Any]) -> None:
        self.calls.append(("after", operation, 1))


class Batches:
    """A plugin implementing only the batch hooks."""

    __name__ = "batch_hooks_fixture"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    @hookimpl(entities=["service_job"])
    def qiao_before_records_write(self, operation: str, values: list[dict[str, Any]]) -> None:
        self.calls.append(("before", operation, len(values)))

    @hookimpl(entities=["service_job"])
    def qiao_after_records_write(self, operation: str, records: list[dict[str, Any]]) -> None:
        self.calls.append(("after", operation, len(records)))


@pytest.fixture
def plugins() -> tuple[Declares, Batches]:
    return Declares(), Batches()


@pytest.fixture
def asks() -> SimpleNamespace:
    """A plugin implementing only the per-record hook, with ``applies=``: ``asked`` lists the
    entities of the batches it was asked about, ``rows`` those of the rows it was called for."""
    seen = SimpleNamespace(asked=[], rows=[])

    def applies(context: Any, entity: Any, operation: str) -> bool:
        seen.asked.append(entity.name)
        return bool(entity.name == "service_job")

    def qiao_before_record_write(entity: Any) -> None:
        seen.rows.append(entity.name)

    hook = staticmethod(hookimpl(qiao_before_record_write, applies=applies))
    namespace = {"__name__": "asking_fixture", "qiao_before_record_write": hook}
    seen.plugin = type("Asks", (), namespace)()
    return seen


@pytest.fixture
def qiao_extra_plugins(plugins: tuple[Declares, Batches], asks: SimpleNamespace) -> Sequence[Any]:
    return [*plugins, asks.plugin]


def rows(count: int, account: str | None = None) -> list[dict[str, Any]]:
    return [
        {"subject": f" 主轴异响 {i} ", "hours": i, "mobile": f"1380013{i:04d}", "account": account}
        for i in range(count)
    ]


def create_many(runtime: Runtime, entity: str, values: list[dict[str, Any]], **options: Any) -> Any:
    records = runtime.records
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        return records.create_many(ctx, entity, values, **options)


def account(runtime: Runtime, name: str = "苏州精工") -> str:
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return str(records.create(ctx, "account", {"name": name})["id"])


def count(runtime: Runtime, table: Any, *where: Any) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def stored(runtime: Runtime) -> list[dict[str, Any]]:
    table = runtime.current().table("service_job")
    with runtime.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.number))]


def test_a_batch_stores_what_single_creates_store(
    qiao_runtime: Runtime, plugins: tuple[Declares, Batches]
) -> None:
    declares, batches = plugins
    target = account(qiao_runtime)
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        singles = [records.create(ctx, "service_job", v) for v in rows(3, target)]
    assert batches.calls == [("before", "create", 1), ("after", "create", 1)] * 3
    declares.calls.clear()
    batches.calls.clear()
    events_before = count(qiao_runtime, system.event)
    audit_before = count(qiao_runtime, system.audit_entry)

    created = create_many(qiao_runtime, "service_job", rows(3, target))

    batch = created.records
    assert created.indexes == [0, 1, 2] and created.refused == []
    keep = {"subject", "hours", "mobile", "account_id", "version", "created_by_id"}
    assert [{k: r[k] for k in keep} for r in batch] == [{k: r[k] for k in keep} for r in singles]
    assert [r["subject"] for r in batch] == ["主轴异响 0", "主轴异响 1", "主轴异响 2"]
    numbers = [r["number"] for r in [*singles, *batch]]
    assert numbers == [f"SJ-{n:06d}" for n in range(1, 7)]  # gap-free, in input order
    # Per-record hooks once a row, batch hooks once a batch.
    assert declares.calls == [("before", "create", 1)] * 3 + [("after", "create", 1)] * 3
    assert batches.calls == [("before", "create", 3), ("after", "create", 3)]
    assert count(qiao_runtime, system.event) == events_before + 3
    assert count(qiao_runtime, system.audit_entry) == audit_before + 3
    log = audit.bound(qiao_runtime)
    assert log is not None
    with qiao_runtime.db.read() as conn:
        assert log.verify(conn).problem is None
        events = conn.execute(
            select(system.event.c.record_id).where(system.event.c.entity == "service_job")
        ).scalars()
        assert {r["id"] for r in batch} <= set(events)
    field = qiao_runtime.current().entity("service_job").field("mobile")
    assert field is not None
    for row in stored(qiao_runtime):
        assert is_sealed(row["mobile"])
        assert row[index_column(field)]
    with qiao_runtime.db.read() as conn:
        found = records.list(
            conn, "service_job", filter={"mobile": {"eq": "13800130001"}}, actor=Actor.system()
        )
    assert sorted(r["number"] for r in found.records) == ["SJ-000002", "SJ-000005"]


def test_a_batch_with_computed_fields_answers_them_as_single_creates_do(
    qiao_runtime: Runtime,
) -> None:
    target = account(qiao_runtime)
    values = [{"task": "换主轴", "account": target}, {"task": "校准", "account": target}]
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        single = records.create(ctx, "service_visit", values[0])
    batch = create_many(qiao_runtime, "service_visit", values).records
    assert single["summary"] == "苏州精工：换主轴"
    assert [r["summary"] for r in batch] == ["苏州精工：换主轴", "苏州精工：校准"]
    assert {k: v for k, v in batch[0].items() if k not in {"id", "created_at", "updated_at"}} == {
        k: v for k, v in single.items() if k not in {"id", "created_at", "updated_at"}
    }


def test_a_per_record_hook_is_asked_once_a_batch_and_called_only_for_its_batches(
    qiao_runtime: Runtime, asks: SimpleNamespace
) -> None:
    asks.asked.clear()
    asks.rows.clear()  # the runtime's own start-up records
    target = account(qiao_runtime)
    assert (asks.asked, asks.rows) == ([], ["account"]), "a single write is not asked"
    asks.rows.clear()
    create_many(qiao_runtime, "service_job", rows(3))
    create_many(qiao_runtime, "service_visit", [{"task": "校准", "account": target}] * 2)
    assert asks.asked == ["service_job", "service_visit"]
    assert asks.rows == ["service_job"] * 3


def test_every_bad_row_is_reported_by_index_and_nothing_is_written(
    qiao_runtime: Runtime, plugins: tuple[Declares, Batches]
) -> None:
    values = rows(5)
    values[1]["hours"] = -1
    values[3]["colour"] = "red"
    with pytest.raises(RowsRefused) as caught:
        create_many(qiao_runtime, "service_job", values)
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(1, "hours"), (3, "colour")]
    assert caught.value.extensions()["rows"][0]["index"] == 1
    assert "2 of 5 rows" in caught.value.message
    assert stored(qiao_runtime) == []
    assert plugins[1].calls == []  # refused before any hook ran


def test_skipping_invalid_rows_writes_the_rest(qiao_runtime: Runtime) -> None:
    values = rows(4)
    values[2]["mobile"] = "12"
    created = create_many(qiao_runtime, "service_job", values, skip_invalid=True)
    assert created.indexes == [0, 1, 3]
    assert [(r.index, r.error.field) for r in created.refused] == [(2, "mobile")]
    assert [r["number"] for r in stored(qiao_runtime)] == ["SJ-000001", "SJ-000002", "SJ-000003"]


def test_a_rule_broken_after_the_hooks_refuses_the_batch_and_gives_numbers_back(
    qiao_runtime: Runtime,
) -> None:
    values = rows(3)
    values[2]["subject"] = " test "  # the hook strips it, then the rule refuses it
    with pytest.raises(RowsRefused) as caught:
        create_many(qiao_runtime, "service_job", values, skip_invalid=True)
    assert [r.index for r in caught.value.rows] == [2]
    assert stored(qiao_runtime) == []
    create_many(qiao_runtime, "service_job", rows(1))
    assert [r["number"] for r in stored(qiao_runtime)] == ["SJ-000001"]


def test_a_relation_to_a_missing_record_names_the_row(qiao_runtime: Runtime) -> None:
    target = account(qiao_runtime)
    values = rows(3, target)
    values[1]["account"] = "01900000-0000-7000-8000-000000000000"
    with pytest.raises(RowsRefused) as caught:
        create_many(qiao_runtime, "service_job", values)
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(1, "account")]
    assert stored(qiao_runtime) == []


def test_a_unique_value_taken_refuses_the_whole_batch(qiao_runtime: Runtime) -> None:
    create_many(qiao_runtime, "service_job", rows(1))
    values = rows(2)
    values[1]["number"] = "SJ-000001"
    with pytest.raises(Exception) as caught:
        create_many(qiao_runtime, "service_job", values)
    assert getattr(caught.value, "code", None) in {"CONFLICT", "BAD_USER_INPUT"}
    assert len(stored(qiao_runtime)) == 1


def test_concurrent_batches_keep_numbers_and_the_audit_chain_whole(qiao_runtime: Runtime) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(3):
                create_many(qiao_runtime, "service_job", rows(20))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    numbers = [r["number"] for r in stored(qiao_runtime)]
    assert numbers == [f"SJ-{n:06d}" for n in range(1, 181)]
    log = audit.bound(qiao_runtime)
    assert log is not None
    with qiao_runtime.db.read() as conn:
        report = log.verify(conn)
    assert report.problem is None
    entries = system.audit_entry
    assert count(qiao_runtime, entries, entries.c.entity == "service_job") == 180


def test_a_transaction_looks_each_related_record_up_once(qiao_runtime: Runtime) -> None:
    target = account(qiao_runtime)
    table = qiao_runtime.current().table("account")
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        with count_statements(qiao_runtime.db.engine) as first:
            records.create_many(ctx, "service_job", rows(2, target))
        with count_statements(qiao_runtime.db.engine) as second:
            records.create_many(ctx, "service_job", rows(3, target))
    lookup = "FROM account WHERE account.id IN"
    assert sum(lookup in " ".join(s.split()) for s in first.statements) == 1
    assert sum(lookup in " ".join(s.split()) for s in second.statements) == 0, "known already"
    assert count(qiao_runtime, table) == 1
    assert len(stored(qiao_runtime)) == 5


def test_a_related_record_deleted_in_the_transaction_is_refused_after(
    qiao_runtime: Runtime,
) -> None:
    target = account(qiao_runtime)
    records = qiao_runtime.records
    contact = {"name": "王工", "account": target}
    with (
        pytest.raises(RowsRefused) as caught,
        records.transaction(Actor.system(), Source.IMPORT) as ctx,
    ):
        records.create_many(ctx, "contact", [contact])
        records.delete(ctx, "account", target)
        records.create_many(ctx, "contact", [contact])
    assert [(r.index, r.error.message) for r in caught.value.rows] == [
        (0, f"account: no account with id {target}")
    ]
    assert count(qiao_runtime, qiao_runtime.current().table("contact")) == 0


def test_a_record_created_in_a_savepoint_rolled_back_is_refused_after(
    qiao_runtime: Runtime,
) -> None:
    records = qiao_runtime.records
    with (
        pytest.raises(RowsRefused) as caught,
        records.transaction(Actor.system(), Source.IMPORT) as ctx,
    ):
        with pytest.raises(RuntimeError), ctx.connection.begin_nested():
            made = records.create_many(ctx, "account", [{"name": "撤回的客户"}]).records[0]
            records.create_many(ctx, "service_job", rows(1, made["id"]))
            raise RuntimeError("undo the savepoint")
        records.create_many(ctx, "service_job", rows(1, made["id"]))
    assert [r.error.message for r in caught.value.rows] == [
        f"account: no account with id {made['id']}"
    ]
    assert stored(qiao_runtime) == []
