"""An account's activity timeline: its pages, and the indexes behind it (bench/timeline.py).

A timeline is ``activities`` of one account, newest first. An administrator's
page walks ``(account_id, occurred_at)``; a sales rep's rule adds
``owner_id = me``, which only ``(account_id, owner_id, occurred_at)`` serves
without reading and sorting all of the account's rows.
"""

from __future__ import annotations

import json
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


def test_a_timeline_read_is_planned_for_its_account_and_a_plain_list_keeps_its_plan(
    qiao_runtime: Runtime, create: Callable[..., Any]
) -> None:
    """A compiled read filtered by an account runs unprepared on PostgreSQL, so each run
    is planned for its account (a large account of skewed data needs another plan than an
    average one); a read no value narrows stays prepared. Both answer alike on SQLite."""
    from sqlalchemy import event

    from qiao.core.graphql.service import GraphQLService

    accounts = [create("account", name=name)["id"] for name in ("苏州精工", "无锡机床")]
    for n in range(3):
        for account in accounts:
            create(
                "activity",
                kind="CALL",
                occurred_at=f"2026-11-0{n + 1}T09:00:00+08:00",
                account=account,
                subject=f"第{n}次",
            )
    service = GraphQLService(qiao_runtime)
    service.schema()
    thresholds: dict[str, list[Any]] = {"timeline": [], "list": []}

    def seen(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "activity" in statement:
            kind = "timeline" if "account_id" in statement.split("WHERE", 1)[-1] else "list"
            thresholds[kind].append(getattr(cursor.connection, "prepare_threshold", "n/a"))

    timeline = (
        "query T($a: ID!) { activities(filter: {accountId: {eq: $a}}, first: 50) "
        "{ edges { node { subject account { id } } } } }"
    )
    listing = "{ activities(first: 50) { edges { node { subject } } } }"
    event.listen(qiao_runtime.db.engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            for account in accounts:
                answer = service.execute(
                    Actor.system(), {"query": timeline, "variables": {"a": account}}
                )
                edges = json.loads(answer)["data"]["activities"]["edges"]
                assert sorted(e["node"]["subject"] for e in edges) == ["第0次", "第1次", "第2次"]
                assert {e["node"]["account"]["id"] for e in edges} == {account}
            answer = service.execute(Actor.system(), {"query": listing})
            assert len(json.loads(answer)["data"]["activities"]["edges"]) == 6
    finally:
        event.remove(qiao_runtime.db.engine, "before_cursor_execute", seen)
    assert len(thresholds["timeline"]) == 6 and len(thresholds["list"]) == 3
    if qiao_runtime.db.dialect == "postgresql":
        assert set(thresholds["timeline"]) == {None}  # never prepared
        assert None not in thresholds["list"]
