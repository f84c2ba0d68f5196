"""S4: the ERP's sales lines arrive from Yonyou's sales outbound list (销售出库单), pulled
by the connector an administrator configured, naming each dealer by its dealer code; the
mismatch report lists the periods whose figures differ, as with an imported file
(test_s4_erp_file.py).

A line whose dealer code names no dealer is refused and listed in the sync log; a line the
ERP corrects arrives again on the next pull and replaces the one stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from tests.plugins.connectors.deployment import add_yonyou
from tests.plugins.connectors.fakes.yonyou import FakeYonyou, sales_out_line

from .conftest import People
from .test_s4_erp_file import MISMATCHES, q1_purchases, reported_as_one_mismatch

SYNC = 'mutation { syncConnector(name: "用友") }'
REFUSED = """{ connectorCalls(filter: {errorType: {eq: "Refused"}}) {
  edges { node { operation detail } } } }"""


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "connectors", "manufacturing_dealers")


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    """No recording channel: the connectors plugin brings the real ones."""
    return ()


@pytest.fixture
def yonyou(qiao_clock: TestClock) -> Iterator[FakeYonyou]:
    with FakeYonyou(lambda: qiao_clock().timestamp()).serve() as fake:
        fake.merchants = []
        yield fake


def test_erp_sales_lines_pulled_from_yonyou_are_reconciled_by_dealer_code(
    qiao_client: GraphQLClient,
    qiao_worker: Worker,
    people: People,
    client_for: Callable[[str], GraphQLClient],
    yonyou: FakeYonyou,
) -> None:
    admin = qiao_client
    people.finance()
    q1_purchases(admin)
    yonyou.sales_outs = [
        sales_out_line(
            "XSCK-2603-0001",
            "U8-2603-0001",
            "HR-D-001",
            "2026-03-30",
            "1600000.00",
            "2026-03-30 17:00:00",
        ),
        sales_out_line(
            "XSCK-2603-0002",
            "U8-2603-0002",
            "HR-D-002",
            "2026-03-30",
            "799000.00",
            "2026-03-30 17:05:00",
        ),
        sales_out_line(
            "XSCK-2603-0003",
            "U8-2603-0003",
            "HR-D-404",
            "2026-03-30",
            "5000.00",
            "2026-03-30 17:10:00",
        ),
    ]
    add_yonyou(admin, yonyou, page_size=2, sync_sales_lines=True)
    admin.data(SYNC)
    drain(qiao_worker)

    assert [e["node"] for e in admin.data(REFUSED)["connectorCalls"]["edges"]] == [
        {
            "operation": "upsert erp_sales_line",
            "detail": "erp_line_id=U8-2603-0003: no account whose dealer_code is 'HR-D-404'",
        }
    ]
    qian = client_for("qian")
    reported_as_one_mismatch(qian)

    # The ERP corrects the line; the next pull replaces it and the periods agree.
    yonyou.sales_outs[1].update(oriSum="800000.00", pubts="2026-03-31 09:00:00")
    admin.data(SYNC)
    drain(qiao_worker)
    assert (
        len(qian.data("{ erpSalesLines { edges { node { id } } } }")["erpSalesLines"]["edges"]) == 2
    )
    assert qian.data(MISMATCHES)["dealerQuarters"]["edges"] == []
