"""S2 and S6 on the template as shipped: stage playbooks with their tasks and reminders,
and quotes more than 5 % below list price approved by the owner's manager.

Entering 报价 (PROPOSAL) creates the playbook task for the opportunity's owner (rule
报价阶段打法); the stage's key actions and talking points are the ``playbook_step``
records of that stage; an hour before a task is due its owner is reminded. The approval
process ``quote_discount`` ships with the template: nobody builds it by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from qiao.core.events.worker import Worker
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain

from .conftest import People, Replay, create, read, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 5, 18, 10, 30, tzinfo=SHANGHAI)


def test_entering_a_stage_brings_its_playbook_task_and_reminder(
    qiao_client: GraphQLClient,
    replay: Replay,
    qiao_worker: Worker,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    replay.set(NOW)
    people.team("恒锐华东大区", "华东")
    people.user("xu", "徐海涛", "regional_manager", team="恒锐华东大区")
    step = {
        "title": "报价：价格异议处理",
        "stage": "PROPOSAL",
        "industry": "模具",
        "keyActions": "发送正式报价并确认交期；折扣超过 5% 走审批。",
        "talkingPoints": "价格异议时对比全生命周期成本：主轴寿命、能耗与停机损失。",
    }
    create(qiao_client, "playbook_step", step)
    xu = client_for("xu")
    account = create(xu, "account", {"name": "昆山华通模具有限公司", "industry": "模具"})["id"]
    deal = create(
        xu,
        "opportunity",
        {"name": "华通 VMC850 ×2", "accountId": account, "amount": "656000.00"},
        "id stage",
    )
    update(xu, "opportunity", deal["id"], {"stage": "PROPOSAL"})
    replay.advance("5s")
    drain(qiao_worker)

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
    replay.set(due - dt.timedelta(hours=1, seconds=1))
    drain(qiao_worker)
    assert xu.nodes("{ myNotifications { edges { node { title } } } }") == []
    replay.advance("1s")
    drain(qiao_worker)
    assert xu.nodes("{ myNotifications { edges { node { title kind } } } }") == [
        {
            "title": "任务一小时后到期：发送正式报价并确认交期：华通 VMC850 ×2",
            "kind": "follow_up_due",
        }
    ]


def test_the_shipped_quote_approval_holds_quotes_over_five_percent_below_list(
    replay: Replay,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    replay.set(NOW)
    people.team("恒锐华东大区", "华东")
    people.user("zhao", "赵启明", "channel_manager")
    people.user("xu", "徐海涛", "regional_manager", team="恒锐华东大区", manager="zhao")
    xu, zhao = client_for("xu"), client_for("zhao")
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
    qiao_client: GraphQLClient,
    replay: Replay,
    qiao_worker: Worker,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    replay.set(NOW)
    people.team("恒锐华东大区", "华东")
    people.user("xu", "徐海涛", "regional_manager", team="恒锐华东大区")
    xu = client_for("xu")
    account = create(xu, "account", {"name": "昆山华通模具有限公司", "industry": "模具"})["id"]
    product = {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"}
    product_id = create(qiao_client, "product", product)["id"]
    # What the website's tracker and the mail connector write (here with the admin's token).
    signals = (
        ("PAGE_VIEW", 150, "/products/hr-vmc850"),
        ("PAGE_VIEW", 40, "/products/hr-vmc850"),  # a glance: no follow-up
        ("INQUIRY_EMAIL", None, "询价：VMC850 两台含四轴"),
    )
    for kind, seconds, page in signals:
        values = {"accountId": account, "productId": product_id, "kind": kind, "page": page}
        values |= {"occurredAt": NOW.isoformat(), "seconds": seconds}
        create(qiao_client, "customer_signal", values)
    replay.advance("29m")
    drain(qiao_worker)
    assert xu.nodes("{ myNotifications { edges { node { title } } } }") == []
    replay.advance("1m")
    drain(qiao_worker)
    told = xu.nodes("{ myNotifications { edges { node { title body kind } } } }")
    title = "客户意向：昆山华通模具有限公司 关注 立式加工中心 HR-VMC850"
    advice = "。请查看「模具」行业的阶段打法话术与同行业赢单案例后跟进。"
    assert sorted(n["body"] for n in told) == [
        "浏览产品页：/products/hr-vmc850" + advice,
        "询价邮件：询价：VMC850 两台含四轴" + advice,
    ]
    assert {(n["title"], n["kind"]) for n in told} == {(title, "customer_signal")}
