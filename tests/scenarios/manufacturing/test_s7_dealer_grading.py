"""S7: dealers are graded from purchase frequency, payment cycle and SKU breadth.

The manufacturing template grades every dealer that names a grading policy on the first
day of each quarter (the scheduled rule 经销商季度评级), from the order lines of the 90
days before: distinct orders, distinct products, and the average days from invoice to
payment (written on each line by the rule 回款周期). Each grading is kept as a
``dealer_grade_change``. A dealer portal user reads only their own dealer's records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain

from .conftest import Story, create, rearm, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
POLICY = {
    "name": "恒锐经销商分级标准",
    "windowDays": 90,
    "strategicOrders": 3,
    "strategicSkus": 3,
    "strategicDays": 30,
    "goldOrders": 2,
    "goldSkus": 2,
    "goldDays": 45,
    "silverOrders": 1,
    "silverSkus": 1,
    "silverDays": 60,
}
DEALER_FIELDS = "dealerGrade windowOrders windowSkus windowPaymentDays gradedFrom gradedUntil"


def book(
    client: GraphQLClient,
    dealer: str,
    product: str,
    order: str,
    on: str,
    days: int | None,
) -> None:
    """One shipped line, invoiced when ordered and paid ``days`` later (None: unpaid)."""
    ordered = dt.date.fromisoformat(on)
    values: dict[str, Any] = {
        "orderNumber": order,
        "dealerId": dealer,
        "productId": product,
        "orderedOn": on,
        "recordedOn": on,
        "invoicedOn": on,
        "quantity": 1,
        "unitPrice": "10000.00",
        "amount": "10000.00",
    }
    if days is not None:
        values["paidOn"] = (ordered + dt.timedelta(days=days)).isoformat()
        values["paidAmount"] = "10000.00"
    create(client, "purchase_line", values)


def test_dealers_are_graded_each_quarter_with_their_history(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 3, 31, 10, 0, tzinfo=SHANGHAI))
    rearm(admin, "经销商季度评级")
    policy = create(admin, "grading_policy", POLICY)["id"]
    products = [
        create(admin, "product", {"name": f"立式加工中心 {n}", "sku": f"HR-{n}"})["id"]
        for n in ("VMC850", "VMC1160", "TCK56")
    ]
    dealers = {}
    for code, name, grade in [
        ("HR-D-001", "苏州锐达数控设备有限公司", "GOLD"),
        ("HR-D-002", "宁波甬精机床销售有限公司", "GOLD"),
        ("HR-D-003", "无锡锡工机电设备有限公司", "SILVER"),
        ("HR-D-004", "佛山顺威数控科技有限公司", "SILVER"),
    ]:
        values = {
            "name": name,
            "kind": "DEALER",
            "dealerCode": code,
            "dealerGrade": grade,
            "gradingPolicyId": policy,
        }
        dealers[code] = create(admin, "account", values)["id"]
    suzhou, ningbo, wuxi, foshan = dealers.values()
    # 苏州锐达: three orders (one of two lines), three products, paid in 20 days on average.
    book(admin, suzhou, products[0], "SO-001", "2026-01-08", 18)
    book(admin, suzhou, products[1], "SO-001", "2026-01-08", 18)
    book(admin, suzhou, products[1], "SO-002", "2026-02-10", 22)
    book(admin, suzhou, products[2], "SO-003", "2026-03-20", 22)
    # 宁波甬精: two orders in the window, 40 days; one before it does not count.
    book(admin, ningbo, products[0], "SO-101", "2025-12-31", 5)
    book(admin, ningbo, products[0], "SO-102", "2026-01-15", 40)
    book(admin, ningbo, products[1], "SO-103", "2026-03-01", 40)
    # 无锡锡工: three quick orders of one product: breadth keeps it silver.
    for i, on in enumerate(("2026-01-05", "2026-02-05", "2026-03-05")):
        book(admin, wuxi, products[2], f"SO-20{i}", on, 10)
    # 佛山顺威: one order, never paid: no payment cycle, so standard.
    book(admin, foshan, products[0], "SO-301", "2026-02-01", None)
    drain(story.worker)  # the payment cycles are written on the lines

    # 02:00 on the first day of the quarter, Shanghai time.
    story.replay.set(dt.datetime(2026, 4, 1, 2, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    graded = {
        code: admin.data(f'{{ account(id: "{id_}") {{ {DEALER_FIELDS} }} }}')["account"]
        for code, id_ in dealers.items()
    }
    window = {"gradedFrom": "2026-01-01", "gradedUntil": "2026-03-31"}
    assert graded == {
        "HR-D-001": {
            "dealerGrade": "STRATEGIC",
            "windowOrders": 3,
            "windowSkus": 3,
            "windowPaymentDays": "20.000000",
            **window,
        },
        "HR-D-002": {
            "dealerGrade": "GOLD",
            "windowOrders": 2,
            "windowSkus": 2,
            "windowPaymentDays": "40.000000",
            **window,
        },
        "HR-D-003": {
            "dealerGrade": "SILVER",
            "windowOrders": 3,
            "windowSkus": 1,
            "windowPaymentDays": "10.000000",
            **window,
        },
        "HR-D-004": {
            "dealerGrade": "STANDARD",
            "windowOrders": 1,
            "windowSkus": 1,
            "windowPaymentDays": None,
            **window,
        },
    }

    # The administrator raises the gold bar; next quarter nobody ordered, so all are standard.
    update(admin, "grading_policy", policy, {"goldOrders": 5})
    story.replay.set(dt.datetime(2026, 7, 1, 2, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    history = admin.data(
        """query($d: ID!) { dealerGradeChanges(filter: {dealerId: {eq: $d}},
             orderBy: [{field: GRADED_ON}]) {
             edges { node { gradedOn fromGrade toGrade orders skus paymentDays } } } }""",
        {"d": suzhou},
    )["dealerGradeChanges"]["edges"]
    assert [e["node"] for e in history] == [
        {
            "gradedOn": "2026-04-01",
            "fromGrade": "GOLD",
            "toGrade": "STRATEGIC",
            "orders": 3,
            "skus": 3,
            "paymentDays": "20.000000",
        },
        {
            "gradedOn": "2026-07-01",
            "fromGrade": "STRATEGIC",
            "toGrade": "STANDARD",
            "orders": 0,
            "skus": 0,
            "paymentDays": None,
        },
    ]

    # 苏州锐达's own staff see their dealer's lines and nothing of the others'.
    story.people.user("portal.ruida", "苏州锐达-陈静", "dealer_portal", dealerId=suzhou)
    portal = story.client_for("portal.ruida")
    seen = portal.data(
        "{ purchaseLines { totalCount edges { node { orderNumber dealer { name } } } } "
        "accounts { edges { node { name } } } }"
    )
    assert seen["purchaseLines"]["totalCount"] == 4
    assert {e["node"]["dealer"]["name"] for e in seen["purchaseLines"]["edges"]} == {
        "苏州锐达数控设备有限公司"
    }
    assert [e["node"]["name"] for e in seen["accounts"]["edges"]] == ["苏州锐达数控设备有限公司"]
    # They open tickets for their own dealer, and for no other.
    ticket = {"subject": "主轴异响", "ticketType": "REPAIR", "status": "TO_DISPATCH"}
    mine = create(portal, "service_ticket", {**ticket, "dealerId": suzhou}, "dealer { name }")
    assert mine == {"dealer": {"name": "苏州锐达数控设备有限公司"}}
    (refused,) = portal.errors(
        "mutation($input: ServiceTicketCreateInput!) { createServiceTicket(input: $input) { id } }",
        {"input": {**ticket, "dealerId": ningbo}},
    )
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["extensions"]["field"] == "dealer"
    # A portal user whose record names no dealer sees nothing.
    story.people.user("portal.nobody", "未绑定经销商", "dealer_portal")
    assert story.client_for("portal.nobody").data("{ purchaseLines { totalCount } }") == {
        "purchaseLines": {"totalCount": 0}
    }
