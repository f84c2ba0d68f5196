"""S4/S5: the ERP's sales lines arrive as a file exported from U8, naming each dealer by its
dealer code; finance imports it (``qiao import`` of the leads plugin, here its importer run
as the finance user) and the mismatch report lists the periods whose figures differ.

A row whose dealer code names no dealer is refused and reported with its row and column;
the others are stored, each with the dealer found by its code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.plugins.leads.importing.runner import Importer

from .conftest import People, create

MAPPING = {
    "ERP行号": "erp_line_id",
    "经销商编码": "dealer.dealer_code",
    "过账日期": "posted_on",
    "金额": "amount",
}
MISMATCHES = """{ dealerQuarters(filter: {erpDifference: {neq: "0"}}) {
  edges { node { name purchases erpAmount erpDifference } } } }"""


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "leads", "manufacturing_dealers")


def q1_purchases(admin: GraphQLClient) -> None:
    """Two dealers found by code, each with one order line in 2026Q1 and that period."""
    program = {"code": "HR-RB-2026Q", "name": "2026 季度返利", "graceDays": 15}
    program_id = create(admin, "rebate_program", program)["id"]
    product = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})
    for code, name, amount in (
        ("HR-D-001", "苏州锐达", "1600000.00"),
        ("HR-D-002", "宁波甬精", "800000.00"),
    ):
        dealer = create(admin, "account", {"name": name, "kind": "DEALER", "dealerCode": code})[
            "id"
        ]
        values: dict[str, Any] = {
            "orderNumber": f"SO-{code}",
            "dealerId": dealer,
            "productId": product["id"],
            "orderedOn": "2026-02-01",
            "recordedOn": "2026-02-01",
            "quantity": 1,
            "unitPrice": amount,
            "amount": amount,
        }
        create(admin, "purchase_line", values)
        quarter = {"name": f"{name} 2026Q1", "dealerId": dealer, "programId": program_id}
        quarter |= {"periodStart": "2026-01-01", "periodEnd": "2026-03-31"}
        create(admin, "dealer_quarter", quarter)


def reported_as_one_mismatch(qian: GraphQLClient) -> None:
    """The two ERP lines stored for their dealers and the one period they disagree in."""
    lines = qian.data("{ erpSalesLines { edges { node { erpLineId amount dealer { name } } } } }")
    assert sorted(
        (e["node"]["erpLineId"], e["node"]["dealer"]["name"], e["node"]["amount"])
        for e in lines["erpSalesLines"]["edges"]
    ) == [("U8-2603-0001", "苏州锐达", "1600000.00"), ("U8-2603-0002", "宁波甬精", "799000.00")]
    assert [e["node"] for e in qian.data(MISMATCHES)["dealerQuarters"]["edges"]] == [
        {
            "name": "宁波甬精 2026Q1",
            "purchases": "800000.00",
            "erpAmount": "799000.00",
            "erpDifference": "-1000.00",
        }
    ]


def test_an_erp_file_is_imported_by_dealer_code_and_its_mismatches_reported(
    qiao_client: GraphQLClient,
    qiao_runtime: Runtime,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    admin = qiao_client
    people.finance()
    q1_purchases(admin)
    exported = (
        "ERP行号,经销商编码,过账日期,金额\n"
        'U8-2603-0001,HR-D-001,2026/3/30,"1,600,000.00"\n'
        "U8-2603-0002,HR-D-002,2026-03-30,799000.00\n"
        "U8-2603-0003,HR-D-404,2026-03-30,5000.00\n"
    )
    finance = Actor(user_id=people.ids["qian"], username="qian")
    outcome = Importer(qiao_runtime, finance).run(
        exported.encode("gb18030"), "U8销售明细2603.csv", "erp_sales_line", MAPPING
    )
    assert (outcome.rows, outcome.created, outcome.errors) == (3, 2, 1)
    (problem,) = outcome.problems
    assert (problem.row, problem.column, problem.reason) == (
        4,
        "经销商编码",
        "no account whose dealer_code is 'HR-D-404'",
    )
    reported_as_one_mismatch(client_for("qian"))
    # A dealer is found by a unique field only: names repeat.
    by_name = {**MAPPING, "经销商编码": "dealer.name"}
    with pytest.raises(BadUserInput) as refused:
        Importer(qiao_runtime, finance).run(
            exported.encode(), "again.csv", "erp_sales_line", by_name
        )
    assert refused.value.message == (
        "mapping: column '经销商编码' goes to 'dealer.name', but account.name is no unique "
        "field to find account records by"
    )
