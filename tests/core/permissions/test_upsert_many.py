"""Batch upserts apply the caller's rules to every row, written or not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

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
