"""An account's activity timeline: its pages, and the indexes behind it (bench/timeline.py).

A timeline is ``activities`` of one account, newest first. An administrator's
page walks ``(account_id, occurred_at)``; a sales rep's rule adds
``owner_id = me``, which only ``(account_id, owner_id, occurred_at)`` serves
without reading and sorting all of the account's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect, text

from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

TIMELINE = {
    "ix_activity_account_id_occurred_at": ["account_id", "occurred_at"],
    "ix_activity_account_id_owner_id_occurred_at": ["account_id", "owner_id", "occurred_at"],
}


def activity_indexes(runtime: Runtime) -> dict[str, list[str]]:
    with runtime.db.read() as conn:
        return {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("activity")}


def test_a_new_deployment_has_the_timeline_indexes(qiao_runtime: Runtime) -> None:
    found = activity_indexes(qiao_runtime)
    assert {name: found.get(name) for name in TIMELINE} == TIMELINE


def test_migrate_adds_the_rep_timeline_index_to_an_older_deployment(
    qiao_runtime: Runtime,
) -> None:
    with qiao_runtime.db.write() as conn:
        conn.execute(text("DROP INDEX ix_activity_account_id_owner_id_occurred_at"))
    assert "ix_activity_account_id_owner_id_occurred_at" not in activity_indexes(qiao_runtime)
    qiao_runtime.migrate()
    found = activity_indexes(qiao_runtime)
    assert (
        found["ix_activity_account_id_owner_id_occurred_at"]
        == TIMELINE["ix_activity_account_id_owner_id_occurred_at"]
    )


def test_a_timeline_pages_through_activities_at_the_same_instant(
    qiao_runtime: Runtime, create: Callable[..., Any]
) -> None:
    """A cursor bounds the first key (``occurred_at <= v``) for the index's sake; rows
    sharing the cursor's instant still come once each, in order, both ways."""
    account = create("account", name="苏州精工")["id"]
    other = create("account", name="无锡机床")["id"]
    instants = [f"2026-11-0{d}T09:00:00+08:00" for d in (1, 2, 2, 2, 3, 3, 4)]
    for n, at in enumerate(instants):
        create("activity", kind="CALL", occurred_at=at, account=account, subject=f"第{n}次")
        create("activity", kind="VISIT", occurred_at=at, account=other)
    order = [{"field": "occurred_at", "direction": "DESC"}]
    where = {"account_id": {"eq": account}}
    seen, after, pages = [], None, 0
    with qiao_runtime.db.read() as conn:

        def timeline(**paging: Any) -> Any:
            return qiao_runtime.records.list(
                conn, "activity", filter=where, order_by=order, actor=Actor.system(), **paging
            )

        while True:
            page = timeline(first=2, after=after)
            seen += page.records
            pages += 1
            assert page.has_previous_page is (after is not None)
            if not page.has_next_page:
                break
            after = page.cursors[-1]
        back = timeline(last=3, before=after)
    assert pages == 4
    assert len({r["id"] for r in seen}) == len(instants)
    keys = [(r["occurred_at"], r["id"]) for r in seen]
    assert keys == sorted(keys, key=lambda k: (-k[0].timestamp(), k[1]))
    assert [r["id"] for r in back.records] == [r["id"] for r in seen[2:5]]  # before seen[5]
