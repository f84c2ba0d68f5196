"""The dashboard figures of the template's docs ("Dashboard queries"), each one aggregate
query as the role that reads it, with exact figures: planned against actual per product and
quarter, rebates accrued against paid, the ticket SLA, the first-time fix rate, maintenance
on time and the trial pass rate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from qiao.core.testing.worker import drain

from .conftest import Story, create, rearm, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

PLANNED_BY_PRODUCT = """{ agreementLineAggregate(filter: {periodStart: {eq: "2026-04-01"}},
    groupBy: [{field: PRODUCT_ID}],
    orderBy: [{aggregate: SUM, field: PLANNED_AMOUNT, direction: DESC}]) {
  key { product { sku } } sum { plannedQuantity actualQuantity plannedAmount actualAmount } } }"""

PLANNED_BY_QUARTER = """{ agreementLineAggregate(
    groupBy: [{field: PERIOD_START, bucket: QUARTER}]) {
  key { periodStart } sum { plannedAmount actualAmount } } }"""

REBATES = """{ dealerQuarterAggregate(filter: {periodStart: {eq: "2026-01-01"}},
    groupBy: [{field: PAYOUT_STATUS}]) {
  key { payoutStatus } count sum { rebate calculatedAmount approvedAmount paidAmount } } }"""

REBATES_TOTAL = """{ dealerQuarterAggregate(filter: {periodStart: {eq: "2026-01-01"}}) {
  count sum { rebate calculatedAmount approvedAmount paidAmount } } }"""

TICKET_SLA = """{ serviceTicketAggregate(filter: {ticketType: {neq: MAINTENANCE}},
    groupBy: [{field: REGION}, {field: CREATED_AT, bucket: MONTH}, {field: ESCALATED}]) {
  key { region createdAt escalated } count } }"""

FIRST_TIME_FIX = """{ serviceTicketAggregate(
    filter: {status: {eq: COMPLETED}, ticketType: {neq: MAINTENANCE}},
    groupBy: [{field: COMPLETED_ON, bucket: MONTH}, {field: FIRST_TIME_FIX}]) {
  key { completedOn firstTimeFix } count } }"""

MAINTENANCE_ON_TIME = """{ serviceTicketAggregate(
    filter: {ticketType: {eq: MAINTENANCE}, status: {in: [COMPLETED, CLOSED]}},
    groupBy: [{field: COMPLETED_ON, bucket: MONTH}, {field: ON_TIME}]) {
  key { completedOn onTime } count } }"""

TRIAL_PASS_RATE = """{ mouldTrialAggregate(filter: {status: {in: [CUSTOMER_SIGN_OFF, FAILED]}},
    groupBy: [{field: TRIAL_ROUND}, {field: PASSED}]) { key { trialRound passed } count } }"""


def test_planned_against_actual_per_product_and_quarter(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 7, 3, 10, 0, tzinfo=SHANGHAI))
    story.people.channel_manager()
    dealer = create(admin, "account", {"name": "苏州锐达", "kind": "DEALER"})["id"]
    vmc = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})["id"]
    hmc = create(admin, "product", {"name": "卧式加工中心 HR-HMC630", "sku": "HR-HMC630"})["id"]
    agreement = {"agreementNumber": "SA-2026-001", "name": "苏州锐达 2026 年中协议"}
    agreement |= {"dealerId": dealer, "startsOn": "2026-04-01", "endsOn": "2026-09-30"}
    agreement_id = create(admin, "sales_agreement", agreement)["id"]
    lines = {}
    for key, product, start, end, quantity, amount in (
        ("vmc-q2", vmc, "2026-04-01", "2026-06-30", 10, "500000.00"),
        ("hmc-q2", hmc, "2026-04-01", "2026-06-30", 4, "240000.00"),
        ("vmc-q3", vmc, "2026-07-01", "2026-09-30", 10, "500000.00"),
    ):
        values = {"agreementId": agreement_id, "productId": product, "periodStart": start}
        values |= {"periodEnd": end, "plannedQuantity": quantity, "plannedAmount": amount}
        lines[key] = create(admin, "agreement_line", values)["id"]
    for n, (line, product, ordered, quantity, amount) in enumerate(
        (
            ("vmc-q2", vmc, "2026-04-10", 3, "150000.00"),
            ("vmc-q2", vmc, "2026-05-20", 4, "200000.00"),
            ("hmc-q2", hmc, "2026-06-01", 1, "60000.00"),
            ("vmc-q2", vmc, "2026-07-02", 2, "100000.00"),  # after the line's period: not counted
            ("vmc-q3", vmc, "2026-07-02", 2, "100000.00"),
        )
    ):
        values = {"orderNumber": f"SO-{n}", "dealerId": dealer, "productId": product}
        values |= {"orderedOn": ordered, "recordedOn": ordered, "quantity": quantity}
        values |= {"unitPrice": "50000.00", "amount": amount, "salesAgreementId": agreement_id}
        create(admin, "purchase_line", values | {"scheduleLineId": lines[line]})

    zhao = story.client_for("zhao")
    assert zhao.data(PLANNED_BY_PRODUCT)["agreementLineAggregate"] == [
        {"key": {"product": {"sku": "HR-VMC850"}},
         "sum": {"plannedQuantity": "10", "actualQuantity": "7",
                 "plannedAmount": "500000.00", "actualAmount": "350000.00"}},
        {"key": {"product": {"sku": "HR-HMC630"}},
         "sum": {"plannedQuantity": "4", "actualQuantity": "1",
                 "plannedAmount": "240000.00", "actualAmount": "60000.00"}},
    ]  # fmt: skip
    assert zhao.data(PLANNED_BY_QUARTER)["agreementLineAggregate"] == [
        {"key": {"periodStart": "2026-04-01"},
         "sum": {"plannedAmount": "740000.00", "actualAmount": "410000.00"}},
        {"key": {"periodStart": "2026-07-01"},
         "sum": {"plannedAmount": "500000.00", "actualAmount": "100000.00"}},
    ]  # fmt: skip


def test_rebates_accrued_against_paid(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 3, 31, 10, 0, tzinfo=SHANGHAI))
    rearm(admin, "返利期到期核算")
    story.people.finance()
    product = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})
    quarters = {}
    # 苏州锐达: 1,600,000.00, all paid, 31.25 % new: 0.042. 宁波甬精: 600,000.00, no new: 0.025.
    for name, amounts in (
        ("苏州锐达", (("1100000.00", False), ("500000.00", True))),
        ("宁波甬精", (("600000.00", False),)),
    ):
        dealer = create(admin, "account", {"name": name, "kind": "DEALER"})["id"]
        for n, (amount, new) in enumerate(amounts):
            values = {"orderNumber": f"SO-{name}-{n}", "dealerId": dealer}
            values |= {"productId": product["id"], "orderedOn": "2026-02-01"}
            values |= {"recordedOn": "2026-02-01", "quantity": 1, "unitPrice": amount}
            values |= {"amount": amount, "paidAmount": amount, "newProduct": new}
            create(admin, "purchase_line", values)
        period = {"name": f"{name} 2026Q1", "dealerId": dealer}
        period |= {"periodStart": "2026-01-01", "periodEnd": "2026-03-31"}
        quarters[name] = create(admin, "dealer_quarter", period)["id"]
    qian = story.client_for("qian")
    assert qian.data(REBATES_TOTAL)["dealerQuarterAggregate"] == [
        {"count": 2, "sum": {"rebate": "82200.00", "calculatedAmount": None,
                             "approvedAmount": None, "paidAmount": None}},
    ]  # fmt: skip

    # 01:00 on 1 April both are frozen and submitted; finance approves and settles one.
    story.replay.set(dt.datetime(2026, 4, 1, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    queue = qian.nodes("{ pendingApprovals { edges { node { id recordId } } } }")
    (request,) = [r for r in queue if r["recordId"] == quarters["苏州锐达"]]
    qian.data("mutation($id: ID!) { approveRequest(id: $id) { status } }", {"id": request["id"]})
    settle = {"payoutStatus": "SETTLED", "settlement": "OFFSET", "settledOn": "2026-04-20"}
    update(qian, "dealer_quarter", quarters["苏州锐达"], settle | {"paidAmount": "67200.00"})

    assert qian.data(REBATES)["dealerQuarterAggregate"] == [
        {"key": {"payoutStatus": "PENDING"}, "count": 1,
         "sum": {"rebate": "15000.00", "calculatedAmount": "15000.00",
                 "approvedAmount": None, "paidAmount": None}},
        {"key": {"payoutStatus": "SETTLED"}, "count": 1,
         "sum": {"rebate": "67200.00", "calculatedAmount": "67200.00",
                 "approvedAmount": "67200.00", "paidAmount": "67200.00"}},
    ]  # fmt: skip
    assert qian.data(REBATES_TOTAL)["dealerQuarterAggregate"] == [
        {"count": 2, "sum": {"rebate": "82200.00", "calculatedAmount": "82200.00",
                             "approvedAmount": "67200.00", "paidAmount": "67200.00"}},
    ]  # fmt: skip


def _rows(groups: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(*group["key"].values(), group["count"]) for group in groups]


def test_ticket_sla_first_time_fix_and_maintenance_on_time(story: Story) -> None:
    admin = story.admin
    opened = dt.datetime(2026, 6, 1, 10, 45, tzinfo=SHANGHAI)  # a Monday
    story.replay.set(opened)
    story.people.team("恒锐华东服务部", "华东")
    story.people.user("wang", "王建军", "field_engineer", team="恒锐华东服务部")
    story.people.user("sun", "孙国平", "service_supervisor", team="恒锐华东服务部")
    tickets = {}
    for subject, kind, due in (
        ("主轴异响", "REPAIR", None),
        ("刀库卡刀", "REPAIR", None),
        ("冷却泵漏液", "REPAIR", None),
        ("HR2605-0520 季度保养", "MAINTENANCE", "2026-06-01"),
        ("HR2409-0321 季度保养", "MAINTENANCE", "2026-05-30"),
    ):
        values = {"subject": subject, "ticketType": kind, "status": "TO_DISPATCH"}
        values |= {"region": "华东", "dueOn": due}
        tickets[subject] = create(admin, "service_ticket", values)["id"]
    drain(story.worker)
    # Every ticket but 主轴异响 is taken within the hour; that one is escalated at 13:45.
    story.replay.advance("1h")
    for subject, ticket in tickets.items():
        if subject != "主轴异响":
            update(admin, "service_ticket", ticket, {"status": "IN_PROGRESS"})
    story.replay.set(dt.datetime(2026, 6, 1, 13, 45, tzinfo=SHANGHAI))
    drain(story.worker)
    update(admin, "service_ticket", tickets["主轴异响"], {"status": "IN_PROGRESS"})
    # 冷却泵漏液 needed a second visit.
    for subject, ticket in tickets.items():
        visits = 2 if subject == "冷却泵漏液" else 1
        done = {"status": "TO_ACCEPT", "resolution": "已处理", "visits": visits}
        update(admin, "service_ticket", ticket, done)
        update(admin, "service_ticket", ticket, {"status": "COMPLETED"})

    sun = story.client_for("sun")
    assert _rows(sun.data(TICKET_SLA)["serviceTicketAggregate"]) == [
        ("华东", "2026-06-01", False, 2),
        ("华东", "2026-06-01", True, 1),
    ]
    assert _rows(sun.data(FIRST_TIME_FIX)["serviceTicketAggregate"]) == [
        ("2026-06-01", False, 1),
        ("2026-06-01", True, 2),
    ]
    # Completed on 1 June: on time for the one due that day, late for the one due 30 May.
    assert _rows(sun.data(MAINTENANCE_ON_TIME)["serviceTicketAggregate"]) == [
        ("2026-06-01", False, 1),
        ("2026-06-01", True, 1),
    ]


def test_trial_pass_rate_per_round(story: Story) -> None:
    story.replay.set(dt.datetime(2026, 9, 8, 9, 0, tzinfo=SHANGHAI))
    story.people.user("lin", "林志远", "trial_engineer")
    customer = create(story.admin, "account", {"name": "昆山华通模具有限公司"})["id"]
    lin = story.client_for("lin")
    ready = {"status": "MATERIALS_READY", "material": "PP+EPDM-T20", "machineNumber": "YZM-650"}
    ready |= {"trialOn": "2026-09-08"}
    inspected = {"status": "FIRST_ARTICLE_INSPECTION", "inspectionResult": "尺寸合格"}
    inspected |= {"cycleSeconds": "42.5"}
    for mould, round_, steps in (
        ("HT-M2609-017", "T0", (ready, {"status": "FAILED", "failureReason": "缩痕超差"})),
        (
            "HT-M2609-017",
            "T1",
            (ready, inspected, {"status": "CUSTOMER_SIGN_OFF", "signedOffBy": "顾晓东"}),
        ),
        ("HT-M2609-021", "T0", (ready, inspected, {"status": "FAILED", "failureReason": "飞边"})),
        ("HT-M2609-022", "T0", ()),  # still running: not counted
    ):
        values = {"title": f"{mould} {round_}", "mouldNumber": mould, "trialRound": round_}
        values |= {"customerId": customer, "drawingVersion": "B"}
        trial = create(lin, "mould_trial", values)["id"]
        for step in steps:
            update(lin, "mould_trial", trial, step)

    assert _rows(lin.data(TRIAL_PASS_RATE)["mouldTrialAggregate"]) == [
        ("T0", False, 2),
        ("T1", True, 1),
    ]
