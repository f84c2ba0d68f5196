"""Batch updates and upserts apply the caller's rules to every row, written or not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from qiao.core.records.batch import RowsRefused
from qiao.core.records.context import Actor, Source

from .conftest import Org


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "connectors")  # accounts' ERP code is the connectors' external id


def test_a_batch_upsert_applies_the_callers_rules_to_unchanged_rows_too(org: Org) -> None:
    """A row equal to its record is not written, yet it is refused as the update would
    refuse it; a record the caller cannot read is not found, and creating it meets its key."""
    own = org.create("account", name="苏州精工", erp_code="C1", owner=org.users["zhang"])
    colleague = org.create("account", name="苏州重工", erp_code="C2", owner=org.users["li"])
    org.create("account", name="北京机床", erp_code="C3", owner=org.users["zhao"])
    records = org.runtime.records
    rows = [
        {"erp_code": "C1", "name": own["name"]},
        {"erp_code": "C2", "name": colleague["name"]},
        {"erp_code": "C3", "name": "北京机床"},
    ]
    with records.transaction(org.actor("zhang"), Source.IMPORT) as ctx:
        done = records.upsert_many(ctx, "account", "erp_code", rows, skip_invalid=True)
    assert done.indexes == [0] and done.created == set()
    assert [(r.index, r.error.code) for r in done.refused] == [(1, "FORBIDDEN"), (2, "CONFLICT")]
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        done = records.upsert_many(ctx, "account", "erp_code", rows)
    assert done.indexes == [0, 1, 2] and done.created == set()


def test_a_batch_update_refuses_rows_outside_the_callers_scope(org: Org) -> None:
    own = org.create("account", name="苏州精工", owner=org.users["zhang"])
    colleague = org.create("account", name="苏州重工", owner=org.users["li"])
    hidden = org.create("account", name="北京机床", owner=org.users["zhao"])
    records = org.runtime.records
    writes = [
        (own["id"], {"city": "苏州"}),
        (colleague["id"], {"city": "苏州"}),
        (hidden["id"], {"city": "北京"}),
    ]
    zhang = org.actor("zhang")
    with pytest.raises(RowsRefused) as caught, records.transaction(zhang, Source.IMPORT) as ctx:
        records.update_many(ctx, "account", writes)
    assert [(r.index, r.error.code) for r in caught.value.rows] == [
        (1, "FORBIDDEN"),
        (2, "NOT_FOUND"),
    ]
    with records.transaction(zhang, Source.IMPORT) as ctx:
        done = records.update_many(ctx, "account", writes, skip_invalid=True)
    assert done.indexes == [0] and done.records[0]["city"] == "苏州"


def test_a_batch_update_may_not_move_a_record_out_of_the_callers_scope(org: Org) -> None:
    own = org.create("account", name="苏州精工", owner=org.users["zhang"])
    other = org.create("account", name="苏州机床", owner=org.users["zhang"])
    records = org.runtime.records
    writes = [(own["id"], {"city": "苏州"}), (other["id"], {"owner": org.users["zhao"]})]
    with (
        pytest.raises(RowsRefused) as caught,
        records.transaction(org.actor("zhang"), Source.IMPORT) as ctx,
    ):
        records.update_many(ctx, "account", writes, skip_invalid=True)
    assert [(r.index, r.error.code) for r in caught.value.rows] == [(1, "FORBIDDEN")]
    assert "out of the records you may change" in caught.value.rows[0].error.message
    with org.runtime.db.read() as conn:
        found = records.get(conn, "account", own["id"], actor=Actor.system())
    assert found is not None and found["city"] is None
