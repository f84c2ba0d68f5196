"""Relations are never N+1: the statement count depends on the query's shape, not its rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert

from qiao.core.ids import new_id
from qiao.core.testing.statements import count_statements

QUERY = """query($n: Int!) {
  %s
  opportunities(first: $n, orderBy: [{field: AMOUNT, direction: DESC}]) {
    totalCount
    edges { node {
      name amount stage
      owner { username displayName }
      account { name contacts(first: 5) { totalCount edges { node { name mobile } } } }
    } }
  }
}"""


def seed(runtime, rows: int) -> None:
    """``rows`` opportunities over rows/5 accounts with two contacts each, in bulk."""
    catalog = runtime.current()
    now = dt.datetime.now(dt.UTC)
    system = {"created_at": now, "updated_at": now, "version": 1}
    owner = {"id": new_id(), "username": "rep", "display_name": "销售代表", **system}
    accounts = [{"id": new_id(), "name": f"客户{i:03}", **system} for i in range(rows // 5)]
    contacts = [
        {"id": new_id(), "name": f"联系人{i}-{j}", "account_id": a["id"], **system}
        for i, a in enumerate(accounts)
        for j in range(2)
    ]
    opportunities = [
        {
            "id": new_id(),
            "name": f"商机{i:03}",
            "amount": Decimal(f"{1000 + i}.50"),
            "stage": "QUALIFICATION",
            "account_id": accounts[i % len(accounts)]["id"],
            "owner_id": owner["id"],
            **system,
        }
        for i in range(rows)
    ]
    with runtime.db.write() as conn:
        conn.execute(insert(catalog.table("user")), [owner])
        conn.execute(insert(catalog.table("account")), accounts)
        conn.execute(insert(catalog.table("contact")), contacts)
        conn.execute(insert(catalog.table("opportunity")), opportunities)


@pytest.mark.parametrize("extra_root", ["", "me { username }"], ids=["compiled", "strawberry"])
def test_statement_count_is_the_same_for_10_and_500_rows(qiao_runtime, qiao_client, extra_root):
    seed(qiao_runtime, 500)
    query = QUERY % extra_root
    qiao_client.data(query, {"n": 1})  # warm the token and schema caches

    counts = {}
    for rows in (10, 500):
        with count_statements(qiao_runtime.db.engine) as log:
            data = qiao_client.data(query, {"n": rows})
        edges = data["opportunities"]["edges"]
        assert len(edges) == rows
        assert edges[0]["node"]["owner"] == {"username": "rep", "displayName": "销售代表"}
        assert edges[0]["node"]["account"]["contacts"]["totalCount"] == 2
        assert len(edges[0]["node"]["account"]["contacts"]["edges"]) == 2
        counts[rows] = log.count
    assert counts[10] == counts[500]
    assert counts[500] <= 3, counts  # metadata version check, the query itself, and no more
