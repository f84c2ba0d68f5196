"""S4: a dealer's quarterly rebate, computed by the manufacturing template's formulas, to the fen.

Everything goes through GraphQL on the real HTTP server: purchase lines are
written, a ``dealer_quarter`` rolls them up (purchases, paid, new-product
purchases within its period) and its formulas give the payment rate, the
new-product share, the rebate coefficient and the rebate. Each case sits on a
boundary of the tiers of docs/templates/manufacturing_dealers.md, and every value is
compared with a recomputation from scratch in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock

D = Decimal
Q1_START, Q1_END = "2026-01-01", "2026-03-31"


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "manufacturing_dealers")


@pytest.fixture
def client(qiao_client: GraphQLClient, qiao_clock: TestClock) -> GraphQLClient:
    # Settlement runs after the quarter closed, in Shanghai's morning.
    qiao_clock.set(dt.datetime(2026, 4, 2, 1, 30, tzinfo=dt.UTC))
    return qiao_client


def create(client: GraphQLClient, entity: str, values: dict[str, Any], fields: str = "id") -> Any:
    name = "".join(part.capitalize() for part in entity.split("_"))
    query = f"mutation($input: {name}CreateInput!) {{ create{name}(input: $input) {{ {fields} }} }}"
    return client.data(query, {"input": values})[f"create{name}"]


def line(
    client: GraphQLClient,
    dealer: str,
    product: str,
    amount: str,
    paid: str,
    new: bool,
    on: str = "2026-02-15",
) -> None:
    values = {
        "orderNumber": f"PO-{on}",
        "dealerId": dealer,
        "productId": product,
        "orderedOn": on,
        "recordedOn": on,
        "quantity": 1,
        "unitPrice": amount,
        "amount": amount,
        "paidAmount": paid,
        "newProduct": new,
    }
    create(client, "purchase_line", values)


QUARTER_FIELDS = "purchases paid newPurchases paymentRate newProductShare rebateCoefficient rebate"

#: (purchases, paid, new-product purchases) -> expected coefficient and rebate.
CASES = [
    # Over 1.5M: exactly 95 % paid and exactly 30 % new products qualify for the top rate.
    ("1600000.00", "1520000.00", "480000.00", "0.042", "67200.00"),
    ("1600000.00", "1520000.00", "479999.99", "0.038", "60800.00"),
    ("1600000.00", "1519999.99", "480000.00", "0.035", "56000.00"),
    # Exactly 1,500,000.00 is not over 1.5M; one fen more is.
    ("1500000.00", "1425000.00", "450000.00", "0.030", "45000.00"),
    ("1500000.01", "1425000.01", "450000.01", "0.042", "63000.00"),
    # 95 % of 1,500,000.01 is 1,425,000.0095: 1,425,000.00 is short of it.
    ("1500000.01", "1425000.00", "450000.01", "0.035", "52500.00"),
    # Exactly 500,000.00 is the lower tier; one fen more the middle one.
    ("500000.00", "475000.00", "150000.00", "0.015", "7500.00"),
    ("500000.01", "475000.00", "150000.01", "0.020", "10000.00"),
    ("500000.01", "475000.01", "150000.00", "0.025", "12500.00"),
    # 333,333.33 x 0.015 = 4,999.99995, rounded half-up to the fen.
    ("333333.33", "333333.33", "100000.00", "0.015", "5000.00"),
    ("200000.00", "189999.99", "200000.00", "0.000", "0.00"),
]


def coefficient(purchases: D, paid: D, new: D) -> D:
    """The tiers, recomputed in Python from the template's documentation."""
    paid_ok = paid >= purchases * D("0.95")
    new_ok = new >= purchases * D("0.30")
    if purchases > 1_500_000:
        rates = ("0.042", "0.038", "0.035")
    elif purchases > 500_000:
        rates = ("0.030", "0.025", "0.020")
    else:
        rates = ("0.015", "0.010", "0.000")
    return D(rates[0] if paid_ok and new_ok else rates[1] if paid_ok else rates[2])


def ratio(part: D, whole: D) -> D | None:
    return None if not whole else (part / whole).quantize(D("0.0001"), ROUND_HALF_UP)


def test_rebates_follow_the_tiers_to_the_fen(client: GraphQLClient) -> None:
    product = create(client, "product", {"name": "ISG65-160 立式管道离心泵", "sku": "OJ-ISG65"})
    quarters = []
    for i, (purchases, paid, new, _, _) in enumerate(CASES):
        dealer = create(client, "account", {"name": f"经销商{i:02}", "kind": "DEALER"})["id"]
        old = D(purchases) - D(new)
        new_paid = min(D(new), D(paid))
        line(client, dealer, product["id"], new, str(new_paid), True, Q1_START)
        line(client, dealer, product["id"], str(old), str(D(paid) - new_paid), False, Q1_END)
        # Outside the quarter: the day before and the day after.
        line(client, dealer, product["id"], "99999.99", "0.00", True, "2025-12-31")
        line(client, dealer, product["id"], "88888.88", "88888.88", False, "2026-04-01")
        values = {
            "name": f"2026Q1-{i:02}",
            "dealerId": dealer,
            "periodStart": Q1_START,
            "periodEnd": Q1_END,
        }
        quarters.append(create(client, "dealer_quarter", values, QUARTER_FIELDS))

    for quarter, (purchases, paid, new, expected_coefficient, expected_rebate) in zip(
        quarters, CASES, strict=True
    ):
        p, pd, n = D(purchases), D(paid), D(new)
        assert (quarter["purchases"], quarter["paid"], quarter["newPurchases"]) == (
            purchases,
            paid,
            new,
        )
        assert quarter["rebateCoefficient"] == expected_coefficient == str(coefficient(p, pd, n))
        rebate = (p * coefficient(p, pd, n)).quantize(D("0.01"), ROUND_HALF_UP)
        assert quarter["rebate"] == expected_rebate == str(rebate)
        assert quarter["paymentRate"] == str(ratio(pd, p))
        assert quarter["newProductShare"] == str(ratio(n, p))


def test_quarters_are_listed_by_rebate_and_follow_later_payments(client: GraphQLClient) -> None:
    product = create(client, "product", {"name": "WQ50-10-3 潜水排污泵", "sku": "OJ-WQ50"})
    dealers = {}
    for name, amount in (("合肥恒流", "1600000.00"), ("南昌赣泉", "800000.00")):
        dealer = create(client, "account", {"name": name, "kind": "DEALER"})["id"]
        dealers[name] = dealer
        line(client, dealer, product["id"], amount, "0.00", True)
        values = {"name": name, "dealerId": dealer, "periodStart": Q1_START, "periodEnd": Q1_END}
        create(client, "dealer_quarter", values)
    query = """{ dealerQuarters(orderBy: [{field: REBATE, direction: DESC}],
                                filter: {rebate: {gt: "0"}}) {
        edges { node { name rebateCoefficient rebate } } } }"""
    ranked = [e["node"] for e in client.data(query)["dealerQuarters"]["edges"]]
    assert ranked == [
        {"name": "合肥恒流", "rebateCoefficient": "0.035", "rebate": "56000.00"},
        {"name": "南昌赣泉", "rebateCoefficient": "0.020", "rebate": "16000.00"},
    ]
    # Nanchang pays in full after the quarter: the rollup sees it at once.
    line_id = client.data(
        """query($dealer: ID!) { purchaseLines(filter: {dealerId: {eq: $dealer}}) {
             edges { node { id } } } }""",
        {"dealer": dealers["南昌赣泉"]},
    )["purchaseLines"]["edges"][0]["node"]["id"]
    client.data(
        """mutation($id: ID!) { updatePurchaseLine(id: $id, input: {paidAmount: "800000.00"}) {
             id } }""",
        {"id": line_id},
    )
    ranked = [e["node"] for e in client.data(query)["dealerQuarters"]["edges"]]
    assert ranked[1] == {"name": "南昌赣泉", "rebateCoefficient": "0.030", "rebate": "24000.00"}


def test_the_template_refuses_impossible_quarters_and_payments(client: GraphQLClient) -> None:
    dealer = create(client, "account", {"name": "温州瓯江", "kind": "DEALER"})["id"]
    backwards = {
        "name": "bad",
        "dealerId": dealer,
        "periodStart": "2026-03-31",
        "periodEnd": "2026-01-01",
    }
    body = client.post(
        "mutation($input: DealerQuarterCreateInput!) { createDealerQuarter(input: $input) { id } }",
        {"input": backwards},
    )
    (error,) = body["errors"]
    assert error["message"] == "期间结束日期不能早于开始日期"
    assert error["extensions"]["field"] == "periodEnd"
    product = create(client, "product", {"name": "泵", "sku": "OJ-P"})
    with pytest.raises(Exception, match="已付金额不能超过采购金额"):
        line(client, dealer, product["id"], "100.00", "100.01", False)


def test_a_quarter_closes_when_the_clock_passes_its_end(
    client: GraphQLClient, qiao_clock: TestClock
) -> None:
    dealer = create(client, "account", {"name": "台州", "kind": "DEALER"})["id"]
    values = {"name": "Q1", "dealerId": dealer, "periodStart": Q1_START, "periodEnd": Q1_END}
    create(client, "dealer_quarter", values)
    query = "{ dealerQuarters(filter: {closed: {eq: true}}) { edges { node { name closed } } } }"
    # 2026-03-31 15:59 UTC is 23:59 in Shanghai: the last minute of the quarter.
    qiao_clock.set(dt.datetime(2026, 3, 31, 15, 59, tzinfo=dt.UTC))
    assert client.data(query)["dealerQuarters"]["edges"] == []
    qiao_clock.set(dt.datetime(2026, 3, 31, 16, 0, tzinfo=dt.UTC))
    assert client.data(query)["dealerQuarters"]["edges"] == [
        {"node": {"name": "Q1", "closed": True}}
    ]
