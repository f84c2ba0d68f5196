"""S6 on the template as shipped: what each campaign cost per lead and returned, per
campaign and per channel, and a deal's invoicing milestones following its fulfilment.

Leads name the campaign they came from; a deal made from a lead is attributed to the lead's
campaign (rule 商机归属来源活动). Cost per lead, conversion and ROI are formula fields over
the campaign's rollups, exact; the channel figures are one aggregate query. A milestone
reached tells finance to invoice it (rule 开票节点达成通知); the deal's fulfilment and
invoicing progress are rollups of its milestones.
"""

from __future__ import annotations

import datetime as dt

from qiao.core.testing.worker import drain

from .conftest import Story, create, read, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 5, 18, 10, 30, tzinfo=SHANGHAI)

CAMPAIGN = "name leadCount dealCount wonCount wonAmount costPerLead leadConversion roi budgetLeft"

BY_CHANNEL = """{ campaignAggregate(groupBy: [{field: CHANNEL}],
                                 orderBy: [{aggregate: SUM, field: COST, direction: DESC}]) {
    key { channel } count sum { cost leadCount dealCount wonCount wonAmount } } }"""


def test_cost_per_lead_and_roi_per_campaign_and_channel(story: Story) -> None:
    story.replay.set(NOW)
    story.people.channel_manager()
    story.people.east_manager(manager="zhao")
    zhao, xu = story.client_for("zhao"), story.client_for("xu")
    campaigns = {
        name: create(zhao, "campaign", values | {"name": name})["id"]
        for name, values in (
            (
                "2026 CIMT 北京机床展",
                {"channel": "TRADE_SHOW", "budget": "10000.00", "cost": "8430.00"},
            ),
            ("五月搜索推广", {"channel": "ONLINE_ADS", "budget": "3000.00", "cost": "3162.00"}),
            ("华南经销商订货会", {"channel": "TRADE_SHOW", "budget": "5000.00", "cost": "5000.00"}),
        )
    }
    show, ads = campaigns["2026 CIMT 北京机床展"], campaigns["五月搜索推广"]
    leads: dict[str, list[str]] = {show: [], ads: []}
    for campaign, count in ((show, 10), (ads, 6)):
        for n in range(count):
            values = {"name": f"联系人 {n}", "company": f"客户 {campaign[-4:]}-{n}"}
            leads[campaign].append(create(xu, "lead", values | {"campaignId": campaign})["id"])
    account = create(xu, "account", {"name": "昆山华通模具有限公司", "industry": "模具"})["id"]
    # Deals made from the leads: attributed to the lead's campaign by the rule.
    deals = {}
    for campaign, n, amount, stage in (
        (show, 0, "328000.00", "CLOSED_WON"),
        (show, 1, "656000.00", "CLOSED_LOST"),
        (show, 2, "328000.00", "PROPOSAL"),
        (ads, 0, "188000.00", "CLOSED_WON"),
        (ads, 1, "210000.50", "CLOSED_WON"),
    ):
        values = {"name": f"商机 {campaign[-4:]}-{n}", "accountId": account, "amount": amount}
        values |= {"leadId": leads[campaign][n], "stage": stage}
        deals[(campaign, n)] = create(xu, "opportunity", values)["id"]
    drain(story.worker)
    assert read(xu, "opportunity", deals[(ads, 1)], "campaign { name }") == {
        "campaign": {"name": "五月搜索推广"}
    }

    seen = zhao.nodes(
        f"{{ campaigns(orderBy: [{{field: NAME}}]) {{ edges {{ node {{ {CAMPAIGN} }} }} }} }}"
    )
    assert sorted(seen, key=lambda c: c["name"]) == sorted(
        [
            # 8,430.00 over 10 leads; (328,000.00 - 8,430.00) / 8,430.00 = 37.90865...
            {"name": "2026 CIMT 北京机床展", "leadCount": 10, "dealCount": 3, "wonCount": 1,
             "wonAmount": "328000.00", "costPerLead": "843.00", "leadConversion": "0.3000",
             "roi": "37.9087", "budgetLeft": "1570.00"},
            # 3,162.00 over 6 leads; (398,000.50 - 3,162.00) / 3,162.00 = 124.86986...
            {"name": "五月搜索推广", "leadCount": 6, "dealCount": 2, "wonCount": 2,
             "wonAmount": "398000.50", "costPerLead": "527.00", "leadConversion": "0.3333",
             "roi": "124.8699", "budgetLeft": "-162.00"},
            # No leads yet: no cost per lead rather than a division by zero.
            {"name": "华南经销商订货会", "leadCount": 0, "dealCount": 0, "wonCount": 0,
             "wonAmount": "0.00", "costPerLead": None, "leadConversion": None,
             "roi": "-1.0000", "budgetLeft": "0.00"},
        ],
        key=lambda c: c["name"],
    )  # fmt: skip
    # Per channel: the sums cost per lead and ROI are computed from.
    assert zhao.data(BY_CHANNEL)["campaignAggregate"] == [
        {"key": {"channel": "TRADE_SHOW"}, "count": 2,
         "sum": {"cost": "13430.00", "leadCount": "10", "dealCount": "3", "wonCount": "1",
                 "wonAmount": "328000.00"}},
        {"key": {"channel": "ONLINE_ADS"}, "count": 1,
         "sum": {"cost": "3162.00", "leadCount": "6", "dealCount": "2", "wonCount": "2",
                 "wonAmount": "398000.50"}},
    ]  # fmt: skip


def test_invoicing_milestones_follow_the_contract_and_tell_finance(story: Story) -> None:
    story.replay.set(NOW)
    story.people.east_manager()
    story.people.user("qian", "钱丽华", "dealer_finance")
    xu, qian = story.client_for("xu"), story.client_for("qian")
    account = create(xu, "account", {"name": "昆山华通模具有限公司"})["id"]
    values = {"name": "华通 VMC850 ×1", "accountId": account, "amount": "328000.00"}
    deal = create(xu, "opportunity", values | {"stage": "CLOSED_WON"})["id"]
    milestones = {}
    for sequence, (name, event, amount) in enumerate(
        (("预付款", "SIGNED", "98400.00"), ("发货款", "DELIVERED", "196800.00"),
         ("质保金", "WARRANTY_END", "32800.00")),
        start=1,
    ):  # fmt: skip
        values = {"name": name, "opportunityId": deal, "sequence": sequence, "event": event}
        milestones[name] = create(xu, "invoice_milestone", values | {"amount": amount}, "id share")
    assert milestones["预付款"]["share"] == "0.3000"

    update(xu, "invoice_milestone", milestones["预付款"]["id"], {"status": "REACHED"})
    drain(story.worker)
    told = qian.nodes("{ myNotifications { edges { node { title body kind } } } }")
    assert told == [
        {
            "title": "待开票：华通 VMC850 ×1 预付款",
            "body": "客户 昆山华通模具有限公司，开票金额 98400.00 元，"
            "节点 合同签订，达成日期 2026-05-18",
            "kind": "invoice_milestone_reached",
        }
    ]
    # Invoiced needs the invoice; refused without it, and nothing changes.
    first = milestones["预付款"]["id"]
    errors = qian.errors(
        "mutation($id: ID!) { updateInvoiceMilestone(id: $id, input: {status: INVOICED}) { id } }",
        {"id": first},
    )
    assert errors and errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    invoice = {"status": "INVOICED", "invoiceNumber": "04400231", "invoicedOn": "2026-05-19"}
    update(qian, "invoice_milestone", first, invoice)
    update(qian, "invoice_milestone", first, {"status": "PAID", "paidOn": "2026-05-28"})
    update(xu, "invoice_milestone", milestones["发货款"]["id"], {"status": "REACHED"})

    progress = "scheduledAmount fulfilledAmount invoicedAmount collectedAmount toInvoice"
    progress += " unscheduledAmount fulfilmentProgress invoicingProgress"
    assert read(xu, "opportunity", deal, progress) == {
        "scheduledAmount": "328000.00",
        "fulfilledAmount": "295200.00",
        "invoicedAmount": "98400.00",
        "collectedAmount": "98400.00",
        "toInvoice": "196800.00",
        "unscheduledAmount": "0.00",
        "fulfilmentProgress": "0.9000",
        "invoicingProgress": "0.3000",
    }
    reached = read(qian, "invoice_milestone", milestones["发货款"]["id"], "status reachedOn")
    assert reached == {"status": "REACHED", "reachedOn": "2026-05-18"}
