"""The indexes behind an account's activity timeline (bench/timeline.py measures them).

A timeline is ``activities`` of one account, newest first. An administrator's
page walks ``(account_id, occurred_at)``; a sales rep's rule adds
``owner_id = me``, which only ``(account_id, owner_id, occurred_at)`` serves
without reading and sorting all of the account's rows.
"""

from __future__ import annotations

from sqlalchemy import inspect, text

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
