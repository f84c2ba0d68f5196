"""Yonyou sales outbound lines into a deployment's ERP sales lines, through the worker:
the shared pull (paging, watermark, overlap, dedupe) with the line keyed by its ERP line
id and the dealer found by its dealer code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.responses import JSONResponse

from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain

from .deployment import add_yonyou
from .fakes import yonyou as yonyou_fake
from .fakes.yonyou import FakeYonyou, sales_out_line

SYNC = 'mutation { syncConnector(name: "用友") }'
LINES = """{ erpSalesLines(orderBy: [{field: ERP_LINE_ID}]) { edges { node {
  erpLineId postedOn documentNumber amount dealer { dealerCode } } } } }"""
REFUSED = """{ connectorCalls(filter: {errorType: {eq: "Refused"}}) {
  edges { node { operation status detail } } } }"""


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "connectors", "manufacturing_dealers")


def add_dealers(client: Any, *codes: str) -> None:
    for code in codes:
        values = {"name": f"经销商 {code}", "kind": "DEALER", "dealerCode": code}
        client.data(
            "mutation($input: AccountCreateInput!) { createAccount(input: $input) { id } }",
            {"input": values},
        )


def lines(client: Any) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            n["erpLineId"],
            n["dealer"]["dealerCode"],
            n["postedOn"],
            n["documentNumber"],
            n["amount"],
        )
        for n in (e["node"] for e in client.data(LINES)["erpSalesLines"]["edges"])
    ]


def shipped(fake: FakeYonyou) -> None:
    fake.sales_outs = [
        sales_out_line("XS-0001", "L1", "HR-D-001", "2026-03-02", "1000.00", "2026-03-02 09:00:00"),
        sales_out_line("XS-0001", "L2", "HR-D-001", "2026-03-02", "250.50", "2026-03-02 09:00:00"),
        sales_out_line("XS-0002", "L3", "HR-D-002", "2026-03-05", "800.00", "2026-03-05 10:00:00"),
        sales_out_line("XS-0003", "L4", "HR-D-404", "2026-03-06", "50.00", "2026-03-06 11:00:00"),
        sales_out_line("XS-0004", "L5", "HR-D-002", "2026-03-07", "-80.00", "2026-03-07 08:00:00"),
    ]


def test_sales_lines_page_to_the_end_and_a_repull_takes_nothing_twice(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_dealers(qiao_client, "HR-D-001", "HR-D-002")
    shipped(yonyou)
    add_yonyou(qiao_client, yonyou, page_size=2, sync_sales_lines=True)
    qiao_client.data(SYNC)
    drain(qiao_worker)
    first = [
        ("L1", "HR-D-001", "2026-03-02", "XS-0001", "1000.00"),
        ("L2", "HR-D-001", "2026-03-02", "XS-0001", "250.50"),
        ("L3", "HR-D-002", "2026-03-05", "XS-0002", "800.00"),
        ("L5", "HR-D-002", "2026-03-07", "XS-0004", "-80.00"),
    ]
    assert lines(qiao_client) == first
    assert len(yonyou.hits(yonyou_fake.SALES_OUTS)) == 3

    # The unknown dealer code is refused and named in the sync log; the others stored.
    refused = [e["node"] for e in qiao_client.data(REFUSED)["connectorCalls"]["edges"]]
    assert refused == [
        {
            "operation": "upsert erp_sales_line",
            "status": "ERROR",
            "detail": "erp_line_id=L4: no account whose dealer_code is 'HR-D-404'",
        }
    ]

    # A line corrected in the ERP (its document's pubts moves) is updated, not added; the
    # lines read again inside the overlap are not duplicated.
    yonyou.sales_outs[2].update(oriSum="799.00", pubts="2026-03-07 08:03:00")
    qiao_client.data(SYNC)
    drain(qiao_worker)
    assert lines(qiao_client) == [*first[:2], (*first[2][:4], "799.00"), first[3]]
    later = json.loads(yonyou.hits(yonyou_fake.SALES_OUTS)[3].body)
    assert later["simpleVOs"] == [{"field": "pubts", "op": "egt", "value1": "2026-03-07 07:55:00"}]
    assert len(yonyou.hits(yonyou_fake.SALES_OUTS)) == 4


def test_a_rate_limited_sales_outbound_list_waits_and_the_watermark_stays(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou, clock: TestClock
) -> None:
    add_dealers(qiao_client, "HR-D-001", "HR-D-002")
    shipped(yonyou)
    add_yonyou(qiao_client, yonyou, sync_sales_lines=True)
    limited = JSONResponse(
        {"code": "429", "message": "访问频率超限"}, status_code=429, headers={"Retry-After": "90"}
    )
    yonyou.fail(yonyou_fake.SALES_OUTS, limited)
    qiao_client.data(SYNC)
    drain(qiao_worker)
    assert lines(qiao_client) == []
    keys = qiao_client.data("{ connectorCursors { edges { node { key } } } }")
    assert "sales_lines" not in [e["node"]["key"] for e in keys["connectorCursors"]["edges"]]
    clock.advance(minutes=2)
    drain(qiao_worker)
    assert [line[0] for line in lines(qiao_client)] == ["L1", "L2", "L3", "L5"]
