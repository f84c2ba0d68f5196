"""S4 and S5: a quarter's rebate with grace days, returns, the cap, finance's approval,
settlement by red-letter invoice, and the monthly check against the ERP's sales lines.

The program 2026 季度返利 gives 15 grace days: a return booked by 15 April still nets
against Q1, one booked later does not. The day after the grace days the daily rule
freezes the rebate (within the program's cap) and submits it to finance (approval
process ``rebate_payout``). ERP lines of the period are compared with the template's own
lines; the first of each month finance is told of every period that differs. Finance
renders each dealer's statement of the period as a PDF: the lines counted, the tier or
coefficient applied, the accrued, capped and approved amounts to the fen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain

from .conftest import Story, create, rearm, update
from .documents import pdf_text, table_rows

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
QUARTER = """query($id: ID!) { dealerQuarter(id: $id) {
  countsUntil purchases returns paid newPurchases rebateCoefficient rebate payoutStatus
  calculatedAmount approvedAmount erpAmount erpDifference } }"""


def line(
    client: GraphQLClient,
    dealer: str,
    product: str,
    amount: str,
    *,
    booked: str = "2026-02-01",
    new: bool = False,
    kind: str = "SHIPMENT",
) -> None:
    paid = amount if kind == "SHIPMENT" else "0.00"
    values: dict[str, Any] = {
        "orderNumber": f"SO-{booked}",
        "dealerId": dealer,
        "productId": product,
        "orderedOn": "2026-02-01",
        "recordedOn": booked,
        "quantity": 1,
        "unitPrice": amount.lstrip("-"),
        "amount": amount,
        "paidAmount": paid,
        "newProduct": new,
        "lineType": kind,
    }
    create(client, "purchase_line", values)


def test_a_quarter_is_frozen_after_its_grace_days_approved_and_settled(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 3, 31, 10, 0, tzinfo=SHANGHAI))
    for rule in ("返利期到期核算", "ERP 月度对账"):
        rearm(admin, rule)
    story.people.finance()
    program = {
        "code": "HR-RB-2026Q",
        "name": "2026 季度返利",
        "frequency": "QUARTERLY",
        "graceDays": 15,
        "cap": "60000.00",
    }
    program_id = create(admin, "rebate_program", program)["id"]
    product = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})
    quarters = {}
    for name in ("苏州锐达", "宁波甬精"):
        dealer = create(admin, "account", {"name": name, "kind": "DEALER"})["id"]
        line(admin, dealer, product["id"], "1100000.00")
        line(admin, dealer, product["id"], "500000.00", new=True)
        values = {
            "name": f"{name} 2026Q1",
            "dealerId": dealer,
            "programId": program_id,
            "periodStart": "2026-01-01",
            "periodEnd": "2026-03-31",
        }
        quarters[name] = (dealer, create(admin, "dealer_quarter", values)["id"])
    suzhou, suzhou_q = quarters["苏州锐达"]
    ningbo, ningbo_q = quarters["宁波甬精"]
    # 苏州锐达 returns a new machine within the grace days, and another after them.
    line(admin, suzhou, product["id"], "-100000.00", booked="2026-04-10", new=True, kind="RETURN")
    line(admin, suzhou, product["id"], "-50000.00", booked="2026-04-20", new=True, kind="RETURN")
    # The ERP (U8) has 苏州锐达 net of its counted return, and 宁波甬精 one thousand short.
    for erp_id, dealer, amount in (
        ("U8-2603-0001", suzhou, "1600000.00"),
        ("U8-2604-0002", suzhou, "-100000.00"),
        ("U8-2603-0003", ningbo, "1599000.00"),
    ):
        values = {"erpLineId": erp_id, "dealerId": dealer, "postedOn": "2026-03-30"}
        create(admin, "erp_sales_line", {**values, "amount": amount})

    story.replay.set(dt.datetime(2026, 4, 15, 23, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    interim = admin.data(QUARTER, {"id": suzhou_q})["dealerQuarter"]
    # 1,500,000.00 net is not over 1.5M; 400,000.00 new is under 30 %: 0.025.
    assert interim == {
        "countsUntil": "2026-04-15",
        "purchases": "1500000.00",
        "returns": "-100000.00",
        "paid": "1600000.00",
        "newPurchases": "400000.00",
        "rebateCoefficient": "0.025",
        "rebate": "37500.00",
        "payoutStatus": "INTERIM",
        "calculatedAmount": None,
        "approvedAmount": None,
        "erpAmount": "1500000.00",
        "erpDifference": "0.00",
    }
    qian = story.client_for("qian")
    told = qian.nodes("{ myNotifications { edges { node { title body kind } } } }")
    assert [n for n in told if n["kind"] == "erp_mismatch"] == [
        {
            "title": "对账差异：宁波甬精 宁波甬精 2026Q1",
            "body": "返利口径 1600000.00，ERP 1599000.00，差异 -1000.00",
            "kind": "erp_mismatch",
        }
    ]

    # 01:00 on 16 April: the grace days are over; the rebates are frozen and submitted.
    story.replay.set(dt.datetime(2026, 4, 16, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    frozen = admin.data(QUARTER, {"id": suzhou_q})["dealerQuarter"]
    assert (frozen["payoutStatus"], frozen["calculatedAmount"]) == ("PENDING", "37500.00")
    capped = admin.data(QUARTER, {"id": ningbo_q})["dealerQuarter"]
    # 1,600,000.00 x 0.042 = 67,200.00, capped at 60,000.00.
    assert (capped["rebate"], capped["calculatedAmount"]) == ("67200.00", "60000.00")

    queue = qian.nodes("{ pendingApprovals { edges { node { id process recordId stepName } } } }")
    requests = {r["recordId"]: r for r in queue}
    assert set(requests) == {suzhou_q, ningbo_q}
    assert requests[suzhou_q]["stepName"] == "渠道财务审批"
    qian.data(
        'mutation($id: ID!) { approveRequest(id: $id, comment: "核对无误") { status } }',
        {"id": requests[suzhou_q]["id"]},
    )
    approved = admin.data(QUARTER, {"id": suzhou_q})["dealerQuarter"]
    assert (approved["payoutStatus"], approved["approvedAmount"]) == ("APPROVED", "37500.00")

    # The statement: the return booked within the grace days nets, the later one does not.
    filename, text = pdf_text(qian, "rebate_statement", suzhou_q)
    assert filename == "返利结算单-苏州锐达 2026Q1.pdf"
    for expected in (
        "经销商返利结算单",
        "经销商：苏州锐达",
        "结算期间：2026-01-01 至 2026-03-31（苏州锐达 2026Q1）",
        "计入截止日：2026-04-15",
        "返利政策：2026 季度返利（HR-RB-2026Q），季度结算，宽限 15 天",
        "计算方式：系数表",
        "退货金额：-100000.00 元",
        "采购净额：1500000.00 元",
        "实际回款：1600000.00 元",
        "新品采购额：400000.00 元",
        "适用档位：返利系数 0.025",
        "计提返利：37500.00 元",
        "核算返利（单期上限 60000.00 元）：37500.00",
        "批准返利：37500.00",
        "返利状态：已批准",
    ):
        assert expected in text, expected
    assert table_rows(text, "SO-") == [
        ["SO-2026-02-01", "2026-02-01", "2026-02-01", "发货", "1100000.00"],
        ["SO-2026-02-01", "2026-02-01", "2026-02-01", "发货", "500000.00"],
        ["SO-2026-04-10", "2026-02-01", "2026-04-10", "退货", "-100000.00"],
    ]
    # 宁波甬精 accrues 67,200.00 and is frozen at the cap.
    _, text = pdf_text(qian, "rebate_statement", ningbo_q)
    for expected in (
        "采购净额：1600000.00 元",
        "适用档位：返利系数 0.042",
        "计提返利：67200.00 元",
        "核算返利（单期上限 60000.00 元）：60000.00",
        "返利状态：财务审批中",
    ):
        assert expected in text, expected

    settle = {
        "payoutStatus": "SETTLED",
        "settlement": "RED_LETTER_INVOICE",
        "settledOn": "2026-04-28",
        "paidAmount": "37500.00",
    }
    (error,) = admin.errors(
        "mutation($id: ID!, $input: DealerQuarterUpdateInput!) "
        "{ updateDealerQuarter(id: $id, input: $input) { id } }",
        {"id": suzhou_q, "input": settle},
    )
    assert error["message"] == "兑付须选择兑付方式；以红字发票兑付须填写红字发票号码"
    done = update(
        admin,
        "dealer_quarter",
        suzhou_q,
        {**settle, "redInvoiceNumber": "32000261100012345678"},
        "payoutStatus settlement paidAmount",
    )
    assert done == {
        "payoutStatus": "SETTLED",
        "settlement": "RED_LETTER_INVOICE",
        "paidAmount": "37500.00",
    }


def tier_rows(text: str) -> list[list[str]]:
    """The statement's tier table: each tier, marked when the period reached it."""
    tiers = {f"{n}{reached}" for n in "123" for reached in ("", "（已达到）")}
    return [
        cells
        for cells in (line.split() for line in text.splitlines())
        if cells[:1] and cells[0] in tiers
    ]


def test_tiered_programs_pay_whole_amount_or_marginal_tiers(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 3, 31, 10, 0, tzinfo=SHANGHAI))
    rearm(admin, "返利期到期核算")
    story.people.finance()  # the approval needs an approver
    tiers = {
        "tier1From": "0.00",
        "tier1Rate": "0.0100",
        "tier2From": "1000000.00",
        "tier2Rate": "0.0200",
        "tier3From": "2000000.00",
        "tier3Rate": "0.0300",
    }
    product = create(admin, "product", {"name": "数控车床 HR-CK6150", "sku": "HR-CK6150"})["id"]
    cases = [
        # 1% of the first million, 2% of the second, 3% of the last half million.
        ("MARGINAL", {}, "2500000.00", "75000.00", "45000.00", "45000.00"),
        # The second tier reached: its fixed amount for the whole period.
        ("WHOLE", {"tier2Amount": "20000.00"}, "1200000.00", "20000.00", "14000.00", "20000.00"),
        # Exactly at a tier's start is in that tier.
        ("WHOLE", {}, "2000000.00", "60000.00", "30000.00", "60000.00"),
    ]
    quarters = []
    for i, (basis, extra, amount, *_) in enumerate(cases):
        program = {"code": f"P-{i}", "name": f"阶梯 {i}", "basis": basis, **tiers, **extra}
        program_id = create(admin, "rebate_program", program)["id"]
        dealer = create(admin, "account", {"name": f"经销商{i}", "kind": "DEALER"})["id"]
        line(admin, dealer, product, amount)
        values = {
            "name": f"2026Q1-{i}",
            "dealerId": dealer,
            "programId": program_id,
            "periodStart": "2026-01-01",
            "periodEnd": "2026-03-31",
        }
        quarters.append(create(admin, "dealer_quarter", values)["id"])
    story.replay.set(dt.datetime(2026, 4, 1, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    for quarter, (_, _, _, whole, marginal, frozen) in zip(quarters, cases, strict=True):
        got = admin.data(
            "query($id: ID!) { dealerQuarter(id: $id) "
            "{ wholeTierRebate marginalTierRebate calculatedAmount payoutStatus } }",
            {"id": quarter},
        )["dealerQuarter"]
        assert got == {
            "wholeTierRebate": whole,
            "marginalTierRebate": marginal,
            "calculatedAmount": frozen,
            "payoutStatus": "PENDING",
        }

    # The statements show the tiers and which of them the period reached.
    _, text = pdf_text(admin, "rebate_statement", quarters[0])
    assert "计算方式：超额累进" in text and "计提返利：45000.00 元" in text
    assert tier_rows(text) == [
        ["1（已达到）", "0.00", "0.0100"],
        ["2（已达到）", "1000000.00", "0.0200"],
        ["3（已达到）", "2000000.00", "0.0300"],
    ]
    _, text = pdf_text(admin, "rebate_statement", quarters[1])
    assert "计算方式：全额阶梯" in text and "计提返利：20000.00 元" in text
    assert tier_rows(text) == [
        ["1（已达到）", "0.00", "0.0100"],
        ["2（已达到）", "1000000.00", "0.0200", "20000.00"],
        ["3", "2000000.00", "0.0300"],
    ]
