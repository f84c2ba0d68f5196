"""S2 and S6 on the template as shipped: stage playbooks with their tasks and reminders,
and quotes more than 5 % below list price approved by the owner's manager.

Entering 报价 (PROPOSAL) creates the playbook task for the opportunity's owner (rule
报价阶段打法); the stage's key actions and talking points are the ``playbook_step``
records of that stage; an hour before a task is due its owner is reminded. The approval
process ``quote_discount`` ships with the template: nobody builds it by hand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from qiao.core.testing.worker import drain

from .conftest import Story, create, read, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 5, 18, 10, 30, tzinfo=SHANGHAI)


def test_entering_a_stage_brings_its_playbook_task_and_reminder(story: Story) -> None:
    story.replay.set(NOW)
    story.people.east_manager()
    step = {
        "title": "报价：价格异议处理",
        "stage": "PROPOSAL",
        "industry": "模具",
        "keyActions": "发送正式报价并确认交期；折扣超过 5% 走审批。",
        "talkingPoints": "价格异议时对比全生命周期成本：主轴寿命、能耗与停机损失。",
    }
    create(story.admin, "playbook_step", step)
    xu = story.client_for("xu")
    account = create(xu, "account", {"name": "昆山华通模具有限公司", "industry": "模具"})["id"]
    deal = create(
        xu,
        "opportunity",
        {"name": "华通 VMC850 ×2", "accountId": account, "amount": "656000.00"},
        "id stage",
    )
    update(xu, "opportunity", deal["id"], {"stage": "PROPOSAL"})
    story.replay.advance("5s")
    drain(story.worker)

    seen = xu.data(
        """query($id: ID!) { opportunity(id: $id) { stage
             followUpTasks { edges { node { id subject kind notes owner { username }
               account { name } } } } }
           playbookSteps(filter: {stage: {eq: PROPOSAL}}) {
             edges { node { title keyActions talkingPoints } } } }""",
        {"id": deal["id"]},
    )
    (task,) = [e["node"] for e in seen["opportunity"]["followUpTasks"]["edges"]]
    assert {k: task[k] for k in ("subject", "kind", "owner", "account")} == {
        "subject": "发送正式报价并确认交期：华通 VMC850 ×2",
        "kind": "PLAYBOOK",
        "owner": {"username": "xu"},
        "account": {"name": "昆山华通模具有限公司"},
    }
    assert [e["node"] for e in seen["playbookSteps"]["edges"]] == [
        {k: step[k] for k in ("title", "keyActions", "talkingPoints")}
    ]

    due = NOW + dt.timedelta(hours=3)
    update(xu, "follow_up_task", task["id"], {"dueAt": due.isoformat()})
    story.replay.set(due - dt.timedelta(hours=1, seconds=1))
    drain(story.worker)
    assert xu.nodes("{ myNotifications { edges { node { title } } } }") == []
    story.replay.advance("1s")
    drain(story.worker)
    assert xu.nodes("{ myNotifications { edges { node { title kind } } } }") == [
        {
            "title": "任务一小时后到期：发送正式报价并确认交期：华通 VMC850 ×2",
            "kind": "follow_up_due",
        }
    ]

    # After each contact the key progress is picked from the list; a contact without it
    # reminds its owner.
    for subject, progress in (("电话回访报价", "PRICE_OBJECTION"), ("现场拜访", None)):
        contact = {"kind": "CALL", "subject": subject, "accountId": account}
        contact |= {"occurredAt": due.isoformat(), "ownerId": story.people.ids["xu"]}
        create(xu, "activity", {**contact, "keyProgress": progress})
    drain(story.worker)
    reminded = xu.nodes("{ myNotifications { edges { node { title body kind } } } }")
    assert [n for n in reminded if n["kind"] == "key_progress_missing"] == [
        {
            "title": "请补填关键进展：现场拜访",
            "body": "客户 昆山华通模具有限公司 的这次接触未选择关键进展，请在跟进记录中选择。",
            "kind": "key_progress_missing",
        }
    ]
    progress = xu.data(
        "{ activities(filter: {keyProgress: {eq: PRICE_OBJECTION}}) { totalCount } }"
    )
    assert progress["activities"]["totalCount"] == 1


def test_the_shipped_quote_approval_holds_quotes_over_five_percent_below_list(story: Story) -> None:
    story.replay.set(NOW)
    story.people.channel_manager()
    story.people.east_manager(manager="zhao")
    xu, zhao = story.client_for("xu"), story.client_for("zhao")
    account = create(xu, "account", {"name": "宁波北仑汽配制造有限公司"})["id"]
    quotes = {}
    for quoted in ("188000.00", "190000.00"):
        values = {
            "name": f"VMC850 报价 {quoted}",
            "accountId": account,
            "listPrice": "200000.00",
            "quotedPrice": quoted,
        }
        quotes[quoted] = create(xu, "quote", values, "id status")
    assert quotes["188000.00"]["status"] == "PENDING_APPROVAL"
    assert quotes["190000.00"]["status"] == "DRAFT"  # exactly 5 % below needs no approval
    (request,) = zhao.nodes("{ pendingApprovals { edges { node { id stepName recordId } } } }")
    assert (request["stepName"], request["recordId"]) == ("销售经理审批", quotes["188000.00"]["id"])
    zhao.data(
        'mutation($id: ID!) { approveRequest(id: $id, comment: "战略客户，同意让利") { status } }',
        {"id": request["id"]},
    )
    assert read(xu, "quote", quotes["188000.00"]["id"], "status") == {"status": "APPROVED"}


def test_a_long_page_view_or_an_inquiry_brings_the_owner_the_answers_half_an_hour_later(
    story: Story,
) -> None:
    story.replay.set(NOW)
    story.people.team("恒锐华东大区", "华东")
    story.people.team("恒锐华南大区", "华南")
    story.people.east_manager()
    story.people.user("he", "何志强", "regional_manager", team="恒锐华南大区")
    xu, he = story.client_for("xu"), story.client_for("he")
    account = create(xu, "account", {"name": "昆山华通模具有限公司", "industry": "模具"})["id"]
    product = {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"}
    product_id = create(story.admin, "product", product)["id"]
    other = create(story.admin, "product", {"name": "卧式加工中心 HR-HMC630", "sku": "HR-HMC630"})
    # The playbook: answers for the industry or for all, for the product or for all.
    steps = (
        ("报价：价格异议处理", "PROPOSAL", "模具", None, "对比全生命周期成本。"),
        ("需求：精度对比", "NEEDS_ANALYSIS", "模具", product_id, "定位精度 0.005 mm 实测报告。"),
        ("谈判：交期条款", "NEGOTIATION", None, None, "标准机 45 天交付。"),
        ("报价：汽配批量价", "PROPOSAL", "汽车零部件", None, "三台起批量价。"),  # not 模具
        ("需求：卧加托盘", "NEEDS_ANALYSIS", "模具", other["id"], "双托盘交换。"),  # not VMC850
    )
    for title, stage, industry, step_product, points in steps:
        values = {"title": title, "stage": stage, "industry": industry}
        values |= {"productId": step_product, "talkingPoints": points}
        create(story.admin, "playbook_step", values)
    # Won deals: xu reads those of his region only; he's 模具 deal is not his to see.
    for client, name, industry, amount in (
        (xu, "苏州精密模架 VMC850 ×3", "模具", "984000.00"),
        (xu, "宁波汽配 HMC630", "汽车零部件", "1200000.00"),
        (he, "东莞华南模具 VMC850 ×1", "模具", "328000.00"),
    ):
        buyer = create(client, "account", {"name": name.split()[0], "industry": industry})["id"]
        deal = {"name": name, "accountId": buyer, "amount": amount, "stage": "CLOSED_WON"}
        create(client, "opportunity", deal)
    # What the website's tracker and the mail connector write (here with the admin's token).
    signals = (
        ("PAGE_VIEW", 150, "/products/hr-vmc850"),
        ("PAGE_VIEW", 40, "/products/hr-vmc850"),  # a glance: no follow-up
        ("INQUIRY_EMAIL", None, "询价：VMC850 两台含四轴"),
    )
    for kind, seconds, page in signals:
        values = {"accountId": account, "productId": product_id, "kind": kind, "page": page}
        values |= {"occurredAt": NOW.isoformat(), "seconds": seconds}
        create(story.admin, "customer_signal", values)
    story.replay.advance("29m")
    drain(story.worker)
    assert xu.nodes("{ myNotifications { edges { node { title } } } }") == []
    story.replay.advance("1m")
    drain(story.worker)
    told = xu.nodes("{ myNotifications { edges { node { title body kind } } } }")
    title = "客户意向：昆山华通模具有限公司 关注 立式加工中心 HR-VMC850"
    lists = (
        "。「模具」行业的应答话术与同行业赢单如下，请据此跟进。\n"
        "应答话术：需求：精度对比：定位精度 0.005 mm 实测报告。；"
        "谈判：交期条款：标准机 45 天交付。；报价：价格异议处理：对比全生命周期成本。\n"
        "同行业赢单 1 单：苏州精密模架 VMC850 ×3（984000.00 元）"
    )
    assert sorted(n["body"] for n in told) == [
        "浏览产品页：/products/hr-vmc850" + lists,
        "询价邮件：询价：VMC850 两台含四轴" + lists,
    ]
    assert {(n["title"], n["kind"]) for n in told} == {(title, "customer_signal")}
    assert he.nodes("{ myNotifications { edges { node { title } } } }") == []


HEAT_MAP = """{ opportunityAggregate(filter: {stage: {in: [CLOSED_WON, CLOSED_LOST]}},
                           groupBy: [{field: INDUSTRY}, {field: PRODUCT_ID}]) {
    key { industry product { sku } } count sum { playbookAdopted won } avg { playbookAdopted won }
} }"""

HEAT_MAP_SPLIT = """{ opportunityAggregate(filter: {stage: {in: [CLOSED_WON, CLOSED_LOST]}},
    groupBy: [{field: INDUSTRY}, {field: PRODUCT_ID}, {field: PLAYBOOK_ADOPTED}]) {
    key { industry product { sku } playbookAdopted } count avg { won }
} }"""

SIGNALS_BY_WEEK = """{ customerSignalAggregate(filter: {qualifies: {eq: true}},
    groupBy: [{field: INDUSTRY}, {field: PRODUCT_ID}, {field: OCCURRED_AT, bucket: WEEK}]) {
    key { industry product { sku } occurredAt } count
} }"""


def _cells(groups: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each group as a row: its key's values, then its figures, sorted for comparison."""
    rows = []
    for group in groups:
        key = group["key"]
        product = key.pop("product")
        figures = {k: v for k, v in group.items() if k != "key"}
        rows.append((*key.values(), product and product["sku"], *_flat(figures)))
    return sorted(rows, key=str)


def _flat(figures: dict[str, Any]) -> list[Any]:
    return [
        value
        for name in sorted(figures)
        for value in (
            [figures[name][k] for k in sorted(figures[name])]
            if isinstance(figures[name], dict)
            else [figures[name]]
        )
    ]


def test_the_heat_map_sets_playbook_adoption_against_wins_per_industry_and_product(
    story: Story,
) -> None:
    story.replay.set(NOW)
    story.people.east_manager()
    xu = story.client_for("xu")
    vmc = create(story.admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})
    hmc = create(story.admin, "product", {"name": "卧式加工中心 HR-HMC630", "sku": "HR-HMC630"})
    accounts = {
        industry: create(xu, "account", {"name": name, "industry": industry})["id"]
        for industry, name in (("模具", "昆山华通模具有限公司"), ("汽车零部件", "宁波北仑汽配"))
    }
    # (industry, product, playbook task done, outcome): a deal whose stage task was done
    # followed the playbook; one closed without passing 报价 had no task at all.
    deals = (
        ("模具", vmc, True, "CLOSED_WON"),
        ("模具", vmc, True, "CLOSED_LOST"),
        ("模具", vmc, None, "CLOSED_WON"),
        ("模具", hmc, True, "CLOSED_WON"),
        ("汽车零部件", vmc, False, "CLOSED_LOST"),
        ("汽车零部件", vmc, None, "CLOSED_LOST"),
        ("汽车零部件", hmc, True, None),  # still open: not in the map
    )
    for n, (industry, product, done, outcome) in enumerate(deals):
        values = {"name": f"商机 {n}", "accountId": accounts[industry], "productId": product["id"]}
        deal = create(xu, "opportunity", {**values, "amount": "100000.00"})["id"]
        if done is not None:
            update(xu, "opportunity", deal, {"stage": "PROPOSAL"})
            drain(story.worker)
            task = read(xu, "opportunity", deal, "followUpTasks { edges { node { id } } }")
            (edge,) = task["followUpTasks"]["edges"]
            update(xu, "follow_up_task", edge["node"]["id"], {"done": done})
        if outcome is not None:
            update(xu, "opportunity", deal, {"stage": outcome})

    # (industry, SKU, deals, adoption and win rates, playbook deals, won deals)
    assert _cells(xu.data(HEAT_MAP)["opportunityAggregate"]) == sorted(
        [
            ("模具", "HR-HMC630", "1.00", "1.00", 1, "1", "1"),
            ("模具", "HR-VMC850", "0.67", "0.67", 3, "2", "2"),
            ("汽车零部件", "HR-VMC850", "0.00", "0.00", 2, "0", "0"),
        ],
        key=str,
    )
    # Each cell split by adoption: the win rate with the playbook and without it.
    assert _cells(xu.data(HEAT_MAP_SPLIT)["opportunityAggregate"]) == sorted(
        [
            ("模具", 1, "HR-HMC630", "1.00", 1),
            ("模具", 1, "HR-VMC850", "0.50", 2),
            ("模具", 0, "HR-VMC850", "1.00", 1),
            ("汽车零部件", 0, "HR-VMC850", "0.00", 2),
        ],
        key=str,
    )

    # The signals that led there, per industry, product and week (from Monday, in Beijing
    # time: Sunday 23:30 is still the week of the 18th); a glance does not count.
    signals = (
        ("模具", vmc, "PAGE_VIEW", 150, NOW),
        ("模具", vmc, "PAGE_VIEW", 40, NOW + dt.timedelta(days=1)),
        ("模具", vmc, "INQUIRY_EMAIL", None, NOW + dt.timedelta(days=2)),
        ("汽车零部件", vmc, "PAGE_VIEW", 200, dt.datetime(2026, 5, 24, 23, 30, tzinfo=SHANGHAI)),
        ("模具", hmc, "INQUIRY_EMAIL", None, NOW + dt.timedelta(days=7)),
    )
    for industry, product, kind, seconds, at in signals:
        values = {"accountId": accounts[industry], "productId": product["id"], "kind": kind}
        create(
            story.admin,
            "customer_signal",
            values | {"seconds": seconds, "occurredAt": at.isoformat()},
        )
    assert _cells(xu.data(SIGNALS_BY_WEEK)["customerSignalAggregate"]) == sorted(
        [
            ("模具", "2026-05-18", "HR-VMC850", 2),
            ("汽车零部件", "2026-05-18", "HR-VMC850", 1),
            ("模具", "2026-05-25", "HR-HMC630", 1),
        ],
        key=str,
    )
