"""Batch upserts: a page of another system's records written as one upsert after another
would write it, with the new records created together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.batch import RowsRefused, Upserted
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system
from qiao.core.testing.statements import count_statements

MANIFEST: dict[str, Any] = {
    "entities": [
        {
            "name": "erp_part",
            "plural": "erp_parts",
            "label": {"en": "ERP part", "zh-CN": "物料"},
            "fields": [
                {
                    "name": "code",
                    "label": {"zh-CN": "编码"},
                    "type": "string",
                    "unique": True,
                    "external_id": True,
                },
                {"name": "name", "label": {"zh-CN": "名称"}, "type": "string", "required": True},
                {"name": "stock", "label": {"zh-CN": "库存"}, "type": "integer", "min": 0},
                {"name": "barcode", "label": {"zh-CN": "条码"}, "type": "string", "unique": True},
            ],
            "validation_rules": [
                {"name": "no_test", "formula": 'name <> "test"', "message": "不能叫 test"}
            ],
        }
    ]
}


class Declares:
    """The part entity, and a before-write hook trimming names (so the rule is met late)."""

    __name__ = "upsert_many_fixture"

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest(MANIFEST, self.__name__, "erp_part.yaml")]

    @hookimpl(entities=["erp_part"])
    def qiao_before_record_write(self, values: dict[str, Any]) -> None:
        if "name" in values:
            values["name"] = values["name"].strip()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Declares()]


def part(code: str, name: str, **more: Any) -> dict[str, Any]:
    return {"code": code, "name": name, **more}


def upsert_many(runtime: Runtime, rows: list[dict[str, Any]], **options: Any) -> Upserted:
    records = runtime.records
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        return records.upsert_many(ctx, "erp_part", "code", rows, **options)


def stored(runtime: Runtime) -> dict[str, tuple[str, int | None, int]]:
    """code -> (name, stock, version) of every stored part."""
    table = runtime.current().table("erp_part")
    with runtime.db.read() as conn:
        return {
            r.code: (r.name, r.stock, r.version)
            for r in conn.execute(
                select(table.c.code, table.c.name, table.c.stock, table.c.version)
            )
        }


def audited(runtime: Runtime) -> int:
    entries = system.audit_entry
    with runtime.db.read() as conn:
        found = conn.execute(
            select(func.count()).select_from(entries).where(entries.c.entity == "erp_part")
        )
        return int(found.scalar_one())


def test_new_keys_are_created_together_and_known_keys_updated(qiao_runtime: Runtime) -> None:
    upsert_many(qiao_runtime, [part("P1", "泵"), part("P2", "阀", stock=3)])
    assert audited(qiao_runtime) == 2

    with count_statements(qiao_runtime.db.engine) as log:
        done = upsert_many(
            qiao_runtime,
            [part("P2", "阀门", stock=5), *(part(f"N{i}", f"新物料{i}") for i in range(20))],
        )

    assert done.indexes == list(range(21))
    assert [r["code"] for r in done.records] == ["P2", *(f"N{i}" for i in range(20))]
    assert done.created == set(range(1, 21)) and done.refused == []
    assert stored(qiao_runtime)["P2"] == ("阀门", 5, 2)
    assert stored(qiao_runtime)["N7"] == ("新物料7", None, 1)
    assert stored(qiao_runtime)["P1"] == ("泵", None, 1)
    assert audited(qiao_runtime) == 2 + 21
    inserts = [s for s in log.statements if s.startswith("INSERT INTO erp_part")]
    assert len(inserts) == 1, "the 20 new parts are created in one insert"
    lookups = [
        s for s in log.statements if "FROM erp_part WHERE erp_part.code IN" in " ".join(s.split())
    ]
    assert len(lookups) == 1, "the 21 keys are looked up in one query"


def test_rows_the_same_as_their_records_write_nothing(qiao_runtime: Runtime) -> None:
    upsert_many(qiao_runtime, [part(f"P{i}", f"物料{i}", stock=i) for i in range(20)])
    statements = []
    for size in (2, 20):
        again = [part(f"P{i}", f"物料{i}", stock=i) for i in range(size)]
        with count_statements(qiao_runtime.db.engine) as log:
            done = upsert_many(qiao_runtime, again, skip_invalid=True)
        assert done.created == set() and done.indexes == list(range(size))
        assert [r["stock"] for r in done.records] == list(range(size))
        assert not [s for s in log.statements if s.startswith(("UPDATE", "SAVEPOINT"))]
        statements.append(log.count)
    assert statements[0] == statements[1], "one read for the batch, whatever its size"
    assert stored(qiao_runtime)["P7"] == ("物料7", 7, 1)
    assert audited(qiao_runtime) == 20
    done = upsert_many(qiao_runtime, [part("P1", "物料1", stock=1), part("P2", "物料二", stock=2)])
    assert [r["name"] for r in done.records] == ["物料1", "物料二"]
    assert stored(qiao_runtime)["P2"] == ("物料二", 2, 2)
    assert audited(qiao_runtime) == 21


def test_a_key_met_twice_is_written_in_input_order(qiao_runtime: Runtime) -> None:
    upsert_many(qiao_runtime, [part("P1", "泵")])
    done = upsert_many(
        qiao_runtime,
        [
            part("N1", "初版"),
            part("P1", "泵（一改）", stock=1),
            part("N1", "二版", stock=2),
            part("P1", "泵（二改）"),
            part("N1", "三版"),
        ],
    )
    assert done.indexes == [0, 1, 2, 3, 4]
    assert done.created == {0}
    assert stored(qiao_runtime) == {"P1": ("泵（二改）", 1, 3), "N1": ("三版", 2, 3)}


def test_refused_rows_are_reported_by_index_and_nothing_is_written(
    qiao_runtime: Runtime,
) -> None:
    upsert_many(qiao_runtime, [part("P1", "泵"), part("P2", "阀")])
    rows = [
        part("P1", "泵（改）"),  # fine, yet undone with the batch
        part("P2", "阀", stock=-1),  # an update refused
        part("N1", "新"),
        {"name": "没有编码"},
        part("N2", "新", stock=-5),  # a create refused
    ]
    with pytest.raises(RowsRefused) as caught:
        upsert_many(qiao_runtime, rows)
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(3, "code")]
    assert caught.value.rows[0].error.message == "code is required to find the record by"
    del rows[3]
    with pytest.raises(RowsRefused) as caught:
        upsert_many(qiao_runtime, rows)
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(1, "stock")]
    rows[1] = part("P2", "阀")
    with pytest.raises(RowsRefused) as caught:
        upsert_many(qiao_runtime, rows)
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(3, "stock")]
    assert stored(qiao_runtime) == {"P1": ("泵", None, 1), "P2": ("阀", None, 1)}
    assert audited(qiao_runtime) == 2


def test_skipping_invalid_rows_writes_the_others(qiao_runtime: Runtime) -> None:
    upsert_many(qiao_runtime, [part("P1", "泵"), part("P2", "阀", barcode="690001")])
    done = upsert_many(
        qiao_runtime,
        [
            part("P1", "泵", stock=-1),  # an update refused for its value
            part("N1", "新一"),
            part("N2", "新二", stock=-5),  # a create refused for its value
            {"code": 42, "name": "编码不是文本"},
            part("P2", "阀门"),
            part("N3", "新三"),
        ],
        skip_invalid=True,
    )
    assert done.indexes == [1, 4, 5]
    assert done.created == {1, 5}
    assert [(r.index, r.error.field) for r in done.refused] == [
        (0, "stock"),
        (2, "stock"),
        (3, "code"),
    ]
    assert stored(qiao_runtime) == {
        "P1": ("泵", None, 1),
        "P2": ("阀门", None, 2),
        "N1": ("新一", None, 1),
        "N3": ("新三", None, 1),
    }


@pytest.mark.parametrize(
    "bad",
    [
        part("N2", " test "),
        part("N2", "条码重复", barcode="690001"),
        part("P2", " test "),
        part("P2", "阀", barcode="690001"),
    ],
    ids=[
        "a create meeting a rule after the hooks",
        "a create taking a unique value",
        "an update meeting a rule after the hooks",
        "an update taking a unique value",
    ],
)
def test_writes_refused_as_a_whole_are_tried_one_by_one(
    qiao_runtime: Runtime, bad: dict[str, Any]
) -> None:
    upsert_many(
        qiao_runtime,
        [part("P1", "泵", barcode="690001"), part("P2", "阀"), part("P3", "管")],
    )
    done = upsert_many(
        qiao_runtime,
        [part("N1", "新一"), part("P3", "管件"), bad, part("N3", "新三")],
        skip_invalid=True,
    )
    assert done.indexes == [0, 1, 3] and done.created == {0, 3}
    assert [r.index for r in done.refused] == [2]
    assert set(stored(qiao_runtime)) == {"P1", "P2", "P3", "N1", "N3"}
    assert stored(qiao_runtime)["P2"] == ("阀", None, 1)
    assert stored(qiao_runtime)["P3"] == ("管件", None, 2)
    assert audited(qiao_runtime) == 3 + 3


def test_the_key_must_be_an_external_id(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with (
        pytest.raises(BadUserInput, match="'name' is not an external-id field of erp_part"),
        records.transaction(Actor.system(), Source.CONNECTOR) as ctx,
    ):
        records.upsert_many(ctx, "erp_part", "name", [part("P1", "泵")])
