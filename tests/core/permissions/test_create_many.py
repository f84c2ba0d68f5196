"""Batch creates apply the caller's rules row by row: scope, and related records it may read."""

from __future__ import annotations

import pytest

from qiao.core.records.batch import RowsRefused
from qiao.core.records.context import Actor, Source

from .conftest import Org


def test_a_row_outside_the_callers_scope_refuses_the_batch(org: Org) -> None:
    records = org.runtime.records
    rows = [{"name": "苏州一号"}, {"name": "苏州二号", "owner": org.users["wang"]}]
    zhang = org.actor("zhang")
    with pytest.raises(RowsRefused) as caught, records.transaction(zhang, Source.IMPORT) as ctx:
        records.create_many(ctx, "account", rows)
    assert [(r.index, r.error.code) for r in caught.value.rows] == [(1, "FORBIDDEN")]
    with records.transaction(org.actor("zhang"), Source.IMPORT) as ctx:
        created = records.create_many(ctx, "account", rows[:1])
    assert created.records[0]["owner_id"] == org.users["zhang"]  # the creator's by default


def test_a_relation_to_a_record_the_caller_cannot_read_is_reported_as_missing(org: Org) -> None:
    theirs = org.create("account", name="北京机床", owner=org.users["zhao"])
    ours = org.create("account", name="苏州精工", owner=org.users["li"])
    records = org.runtime.records
    rows = [
        {"name": "王工", "account": ours["id"]},
        {"name": "刘工", "account": theirs["id"]},
    ]
    zhang = org.actor("zhang")
    with pytest.raises(RowsRefused) as caught, records.transaction(zhang, Source.IMPORT) as ctx:
        records.create_many(ctx, "contact", rows)
    (refused,) = caught.value.rows
    assert (refused.index, refused.error.field) == (1, "account")
    assert refused.error.message == f"account: no account with id {theirs['id']}"
    with records.transaction(org.actor("zhang"), Source.IMPORT) as ctx:
        created = records.create_many(ctx, "contact", rows, skip_invalid=True)
    assert created.indexes == [0]
    assert [r.index for r in created.refused] == [1]


def test_what_the_system_may_name_in_a_transaction_is_not_lent_to_a_rep(org: Org) -> None:
    """Targets a transaction knows are known per actor: the system naming an account
    first does not let a rep, later in the same transaction, name one it cannot read."""
    theirs = org.create("account", name="北京机床", owner=org.users["zhao"])
    records = org.runtime.records
    row = {"name": "刘工", "account": theirs["id"]}
    with (
        pytest.raises(RowsRefused) as caught,
        records.transaction(org.actor("zhang"), Source.IMPORT) as ctx,
    ):
        records.create_many(ctx.as_actor(Actor.system()), "contact", [row])
        records.create_many(ctx, "contact", [row])
    assert [(r.index, r.error.field) for r in caught.value.rows] == [(0, "account")]
