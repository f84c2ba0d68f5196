"""Exports over a live server: the caller's rows, fields and ``export`` right (docs/exports.md)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from qiao.core.customisation.changes import MetadataChanges
from qiao.core.exports.export import Export, ExportRequest
from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.storage import system
from qiao.core.testing.server import LiveServer

from .conftest import Org

#: Reads all accounts, exports them, but sees no revenue and only masked phones.
CLERK_RIGHTS = {
    "entities": {"account": {"read": "all", "export": "all"}},
    "fields": {"account": {"annual_revenue": "none", "phone": "masked"}},
}


@pytest.fixture
def sales(org: Org) -> Org:
    """Accounts and opportunities of two reps of 苏州组, and a clerk role that may export."""
    for rep, name in (("zhang", "苏州精密机床有限公司"), ("li", "昆山华锐数控")):
        account = org.create(
            "account",
            name=name,
            owner=org.users[rep],
            phone="13812345678",
            annual_revenue="12500000.00",
            city="苏州",
        )
        org.create(
            "opportunity",
            name=f"{name} 五轴加工中心",
            account=account["id"],
            owner=org.users[rep],
            stage="CLOSED_WON" if rep == "zhang" else "PROPOSAL",
            amount="880000.00",
        )
        org.create(
            "opportunity",
            name=f"{name} 备件",
            account=account["id"],
            owner=org.users[rep],
            stage="PROPOSAL",
            amount="12000.00",
        )
    role = org.create("role", name="account_clerk", title="客户文员", rights=CLERK_RIGHTS)
    org.create("role_assignment", user=org.users["nobody"], role=role["id"])
    return org


@pytest.fixture
def export_as(sales: Org, qiao_server: LiveServer) -> Iterator[Any]:
    """``export_as(username, entity, **body)``: the HTTP response of one export."""
    clients: list[httpx.Client] = []

    def post(username: str | None, entity: str, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {sales.token(username)}"} if username else {}
        client = httpx.Client(base_url=qiao_server.url, headers=headers, timeout=30)
        clients.append(client)
        return client.post(f"/export/{entity}", json=body)

    yield post
    for client in clients:
        client.close()


def exports(org: Org) -> list[dict[str, Any]]:
    with org.runtime.db.read() as conn:
        rows = conn.execute(
            select(system.audit_entry).where(system.audit_entry.c.operation == "export")
        )
        return [{**r._mapping, "changes": json.loads(r.changes)} for r in rows]


def test_a_rep_exports_only_her_opportunities_as_xlsx_with_chinese_labels(
    sales: Org, export_as: Any
) -> None:
    answer = export_as("zhang", "opportunity", format="xlsx", orderBy=[{"field": "NAME"}])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="opportunity.xlsx"'
    sheet = load_workbook(io.BytesIO(answer.content), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    assert header[:3] == ["ID", "名称", "客户"] and "阶段" in header and "金额" in header
    names = [r[header.index("名称")] for r in body]
    assert names == ["苏州精密机床有限公司 五轴加工中心", "苏州精密机床有限公司 备件"]
    stages = {r[header.index("阶段")] for r in body}
    assert stages and not stages & {"CLOSED_WON", "PROPOSAL"}  # shown by their labels
    [entry] = exports(sales)
    assert entry["actor"] == "zhang" and entry["entity"] == "opportunity"
    assert entry["changes"]["format"] == "xlsx" and entry["changes"]["rows"] == 2
    assert entry["changes"]["complete"] is True
    assert entry["changes"]["order_by"] == [{"field": "name", "direction": "ASC"}]


def test_a_filtered_csv_with_a_bom_and_api_names(sales: Org, export_as: Any) -> None:
    answer = export_as(
        "qian",
        "opportunity",
        format="csv",
        bom=True,
        names="api",
        filter={"stage": {"eq": "PROPOSAL"}, "amount": {"gte": "100000"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "name", "accountId"] and "createdAt" in header
    assert [dict(zip(header, r, strict=True))["name"] for r in body] == [
        "昆山华锐数控 五轴加工中心"
    ]
    assert dict(zip(header, body[0], strict=True))["stage"] == "PROPOSAL"
    [entry] = exports(sales)
    assert entry["changes"]["filter"] == {"stage": {"eq": "PROPOSAL"}, "amount": {"gte": "100000"}}
    assert entry["changes"]["rows"] == 1 and entry["source"] == "graphql"


def test_hidden_fields_are_no_column_and_masked_ones_stay_masked(
    sales: Org, export_as: Any
) -> None:
    revenue_wan = {
        "name": "revenue_wan",
        "type": "decimal",
        "scale": 2,
        "label": {"en": "Revenue (10k)", "zh-CN": "营业额(万元)"},
        "formula": "ROUND(annual_revenue / 10000, 2)",
    }
    MetadataChanges(sales.runtime).add_field("account", revenue_wan, actor=Actor.system())
    answer = export_as("nobody", "account", format="csv", orderBy=[{"field": "NAME"}])
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8"))))
    header = rows[0]
    assert "年营业额" not in header and "名称" in header
    assert "营业额(万元)" not in header  # computed from the hidden revenue
    phones = {r[header.index("电话")] for r in rows[1:]}
    assert phones == {"138****5678"}
    refused = export_as("nobody", "account", format="csv", filter={"annualRevenue": {"gt": "1"}})
    assert refused.status_code == 403
    assert "annualRevenue" in refused.json()["errors"][0]["message"]
    computed = export_as("nobody", "account", format="csv", orderBy=[{"field": "REVENUE_WAN"}])
    assert computed.status_code == 403
    assert "computed from account.annual_revenue" in computed.json()["errors"][0]["message"]
    everything = export_as("qian", "account", format="csv", names="api")
    header, *rows = list(csv.reader(io.StringIO(everything.content.decode("utf-8"))))
    assert {dict(zip(header, r, strict=True))["revenueWan"] for r in rows} == {"1250.00"}


def test_without_the_export_right_nothing_is_exported(sales: Org, export_as: Any) -> None:
    for username, entity in (("sun", "account"), ("zhang", "account")):
        answer = export_as(username, entity, format="csv")
        assert answer.status_code == 403
        error = answer.json()["errors"][0]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["message"] == "you may not export account records"
    assert export_as(None, "account", format="csv").status_code == 401
    assert exports(sales) == []


BAD_INPUT = [
    ({"format": "pdf"}, "format must be csv or xlsx, not 'pdf'"),
    ({"format": "csv", "filter": {"colour": {"eq": "red"}}}, "filter"),
    ({"format": "csv", "filter": {"stage": {"eq": "WON"}}}, "filter.stage.eq"),
    ({"format": "csv", "orderBy": [{"field": "COLOUR"}]}, "orderBy"),
    ({"format": "csv", "names": "both"}, "names must be labels or api"),
    ({"filter": {}}, '"format"'),
]


def test_bad_input_is_a_clear_error_and_no_file(sales: Org, export_as: Any) -> None:
    for body, message in BAD_INPUT:
        answer = export_as("qian", "opportunity", **body)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert message in error["message"], error
    assert export_as("qian", "spaceship", format="csv").status_code == 404
    assert exports(sales) == []


def test_an_export_stopped_early_is_audited_as_incomplete(sales: Org) -> None:
    runtime = sales.runtime
    wanted = ExportRequest("opportunity", "csv")
    built = GraphQLService(runtime).schema()
    chunks = Export(runtime, built, sales.actor("qian"), wanted, Source.GRAPHQL).chunks()
    assert next(chunks).decode().startswith("ID,名称,客户")
    chunks.close()  # the client went away
    [entry] = exports(sales)
    assert entry["actor"] == "qian" and entry["changes"]["complete"] is False
