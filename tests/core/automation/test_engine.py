"""Rules run from events: triggers, conditions, actions, the loop guard and idempotency."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from qiao.core.automation import engine
from qiao.core.automation.rules import rules_of
from qiao.core.config import Config
from qiao.core.events.model import Delivery
from qiao.core.events.outbox import from_row
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.storage.system import event as event_table
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

pytestmark = pytest.mark.storage


@pytest.fixture
def people(
    create: Callable[..., Record], grant: Callable[[Record, str], None]
) -> dict[str, Record]:
    east = create("team", name="华东服务组", region="浙江")
    north = create("team", name="华北服务组", region="北京")
    boss = create("user", username="boss", display_name="主管")
    zhou = create("user", username="zhou", display_name="周工", team=east["id"], manager=boss["id"])
    wu = create("user", username="wu", display_name="吴工", team=east["id"], manager=boss["id"])
    bj = create("user", username="bj", display_name="北京工程师", team=north["id"])
    for engineer in (zhou, wu, bj):
        grant(engineer, "service_engineer")
    grant(boss, "service_supervisor")
    return {"boss": boss, "zhou": zhou, "wu": wu, "bj": bj}


def test_a_created_record_that_meets_the_condition_is_acted_on(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    get: Callable[[str, str], Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    rule(
        "急单派给区域工程师",
        "ticket",
        {"created": {}},
        [
            {"assign": {"role": "service_engineer", "region": "account.province"}},
            {"set": {"priority": "HIGH", "description": '="序列号 " & serial_number'}},
            {"notify": {"fields": ["owner"], "title": "新工单：{subject}（{priority}）"}},
        ],
        condition='serial_number <> ""',
    )
    account = create("account", name="宁波模具厂", province="浙江")
    ticket = create("ticket", subject="注塑机报警", serial_number="SN-1", account=account["id"])
    skipped = create("ticket", subject="咨询", account=account["id"])
    drain(worker)

    acted = get("ticket", ticket["id"])
    assert acted["owner_id"] in {people["zhou"]["id"], people["wu"]["id"]}
    assert acted["priority"] == "HIGH"
    assert acted["description"] == "序列号 SN-1"
    (note,) = rows("notification", owner_id=acted["owner_id"])
    assert note["title"] == "新工单：注塑机报警（高）"
    assert (note["link_entity"], note["link_id"]) == ("ticket", ticket["id"])
    assert get("ticket", skipped["id"])["owner_id"] is None
    (run,) = rows("automation_run", record_id=ticket["id"])
    assert run["status"] == "DONE"
    assert [d["action"] for d in run["details"]] == ["assign", "set", "notify"]


def test_assignment_balances_and_respects_the_region(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    get: Callable[[str, str], Record],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    rule(
        "派单",
        "ticket",
        {"created": {}},
        [{"assign": {"role": "service_engineer", "region": "account.province"}}],
    )
    account = create("account", name="宁波模具厂", province="浙江")
    tickets = [create("ticket", subject=f"报修 {i}", account=account["id"]) for i in range(4)]
    drain(worker)
    owners = [get("ticket", t["id"])["owner_id"] for t in tickets]
    assert sorted(owners) == sorted([people["zhou"]["id"], people["wu"]["id"]] * 2)


def test_updated_fires_only_when_a_named_field_changes(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    rule(
        "优先级变化告知主管",
        "ticket",
        {"updated": {"fields": ["priority"]}},
        [{"notify": {"users": ["boss"], "title": "{subject} 优先级改为 {priority}"}}],
    )
    ticket = create("ticket", subject="漏油")
    update("ticket", ticket["id"], description="更多细节")
    drain(worker)
    assert rows("notification", owner_id=people["boss"]["id"]) == []
    update("ticket", ticket["id"], priority="URGENT")
    drain(worker)
    (note,) = rows("notification", owner_id=people["boss"]["id"])
    assert note["title"] == "漏油 优先级改为 紧急"


def test_state_entered_with_and_without_a_value(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    rule(
        "解决时盖章",
        "ticket",
        {"state_entered": {"field": "status", "value": "RESOLVED"}},
        [{"set": {"resolved_at": "=NOW()"}}],
    )
    rule(
        "每次状态变化",
        "ticket",
        {"state_entered": {"field": "status"}},
        [{"notify": {"users": ["boss"], "title": "{subject}：{status}"}}],
    )
    ticket = create("ticket", subject="异响")
    drain(worker)
    update("ticket", ticket["id"], status="ACCEPTED")
    drain(worker)
    update("ticket", ticket["id"], status="RESOLVED")
    drain(worker)
    titles = [n["title"] for n in rows("notification", owner_id=people["boss"]["id"])]
    assert titles == ["异响：待受理", "异响：已受理", "异响：已解决"]
    (stamped,) = rows("ticket", id=ticket["id"])
    assert stamped["resolved_at"] is not None


def test_a_rule_never_reacts_to_its_own_changes(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    get: Callable[[str, str], Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
) -> None:
    loop = rule(
        "每次修改都追加说明",
        "ticket",
        {"updated": {}},
        [{"set": {"description": '=description & "+"'}}],
    )
    ticket = create("ticket", subject="循环", description="x")
    update("ticket", ticket["id"], priority="LOW")
    drain(worker)
    assert get("ticket", ticket["id"])["description"] == "x+"
    (run,) = rows("automation_run", rule_id=loop["id"])
    assert run["chain"] == [loop["id"]]


def test_a_chain_of_rules_stops_at_its_limit(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    get: Callable[[str, str], Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
) -> None:
    steps = [
        ("industry", {"province": "浙江"}),
        ("province", {"city": "宁波"}),
        ("city", {"address": "北仑"}),
        ("address", {"name": "改名"}),
        ("name", {"employees": 10}),
        ("employees", {"phone": "13800138000"}),
    ]
    made = [
        rule(f"链{i}", "account", {"updated": {"fields": [watch]}}, [{"set": values}])
        for i, (watch, values) in enumerate(steps)
    ]
    account = create("account", name="原名")
    update("account", account["id"], industry="模具")
    drain(worker)
    stored = get("account", account["id"])
    assert (stored["name"], stored["employees"], stored["phone"]) == ("改名", 10, None)
    assert len(made) - 1 == engine.MAX_CHAIN
    (last,) = rows("automation_run", rule_id=made[-1]["id"])
    assert last["status"] == "SKIPPED"
    assert last["chain"] == [r["id"] for r in made]
    assert "chain of 5 rules" in last["error"]


def test_a_delivery_that_runs_again_does_nothing_twice(
    qiao_runtime: Runtime,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    people: dict[str, Record],
) -> None:
    """A worker that died after committing a rule's run retries the delivery: no double effect."""
    rule(
        "告知主管",
        "ticket",
        {"created": {}},
        [{"notify": {"users": ["boss"], "title": "{subject}"}}],
    )
    ticket = create("ticket", subject="重复投递")
    with qiao_runtime.db.read() as conn:
        (row,) = conn.execute(
            select(event_table).where(
                event_table.c.entity == "ticket", event_table.c.record_id == ticket["id"]
            )
        )
    event = from_row(row._mapping)
    for attempt in (1, 2):
        engine.handle(Delivery("d-1", engine.HANDLER, attempt, event, qiao_runtime))
    assert len(rows("notification", owner_id=people["boss"]["id"])) == 1
    assert len(rows("automation_run", record_id=ticket["id"])) == 1
    engine.handle(Delivery("d-2", engine.HANDLER, 1, event, qiao_runtime))
    assert len(rows("notification", owner_id=people["boss"]["id"])) == 2


def test_a_refused_action_leaves_nothing_but_a_failed_run(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    get: Callable[[str, str], Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    rule(
        "派给北京以外没人的区域",
        "ticket",
        {"created": {}},
        [
            {"set": {"priority": "URGENT"}},
            {"assign": {"role": "service_engineer", "region": "account.province"}},
        ],
    )
    rule("另一条规则照常运行", "ticket", {"created": {}}, [{"set": {"serial_number": "OK"}}])
    account = create("account", name="拉萨客户", province="西藏")
    ticket = create("ticket", subject="无人可派", account=account["id"])
    drain(worker)
    stored = get("ticket", ticket["id"])
    assert (stored["priority"], stored["owner_id"], stored["serial_number"]) == (
        "NORMAL",
        None,
        "OK",
    )
    failed = [r for r in rows("automation_run", record_id=ticket["id"]) if r["status"] == "FAILED"]
    assert len(failed) == 1
    assert "no active user with the role 'service_engineer' in that region" in failed[0]["error"]


def test_a_rule_starts_an_approval(
    qiao_runtime: Runtime,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    people: dict[str, Record],
) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        process = {"name": "big_deals", "entity": "opportunity", "steps": [{"user": "boss"}]}
        records.create(ctx, "approval_process", process)
    rule(
        "大单送审",
        "opportunity",
        {"created": {}},
        [{"start_approval": {"process": "big_deals"}}],
        condition="amount >= 1000000",
    )
    account = create("account", name="常州纺机")
    big = create(
        "opportunity",
        name="整线改造",
        account=account["id"],
        amount="1500000",
        owner=people["zhou"]["id"],
    )
    small = create(
        "opportunity", name="配件", account=account["id"], amount="2000", owner=people["zhou"]["id"]
    )
    drain(worker)
    (request,) = rows("approval_request")
    assert (request["record_id"], request["status"]) == (big["id"], "PENDING")
    (run,) = rows("automation_run", record_id=big["id"])
    assert run["details"] == [
        {"action": "start_approval", "process": "big_deals", "request": request["id"]}
    ]
    assert rows("automation_run", record_id=small["id"]) == []


def test_a_rule_keeps_a_document_of_the_record_or_fails_without_its_template(
    qiao_runtime: Runtime,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
) -> None:
    report = {
        "name": "ticket_sheet",
        "title": "工单",
        "entity": "ticket",
        "filename": "工单-{{ record.subject }}.html",
        "body": "<p>{{ record.subject }}：{{ shown('priority') }}</p>",
    }
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "document_template", report)
        other = {**report, "name": "account_sheet", "entity": "account"}
        records.create(ctx, "document_template", other)
    rule(
        "每次变更优先级留存工单",
        "ticket",
        {"state_entered": {"field": "priority"}},
        [{"render_document": {"template": "ticket_sheet"}}],
    )
    rule(
        "模板对象不符",
        "ticket",
        {"created": {}},
        [{"render_document": {"template": "account_sheet"}}],
    )
    rule("模板不存在", "ticket", {"created": {}}, [{"render_document": {"template": "gone"}}])
    account = create("account", name="宁波模具厂")
    ticket = create("ticket", subject="注塑机报警", account=account["id"])
    drain(worker)
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.update(ctx, "ticket", ticket["id"], {"priority": "URGENT"})
    drain(worker)
    drain(worker)

    kept = rows("document", record_id=ticket["id"])
    assert [(d["filename"], d["content"]) for d in kept] == [
        ("工单-注塑机报警.html", "<p>注塑机报警：中</p>"),
        ("工单-注塑机报警.html", "<p>注塑机报警：紧急</p>"),
    ]
    runs = rows("automation_run", record_id=ticket["id"])
    done = [r["details"] for r in runs if r["status"] == "DONE"]
    assert [d[0]["document"] for d in done] == [d["id"] for d in kept]
    assert sorted(r["error"] for r in runs if r["status"] == "FAILED") == [
        "render_document: document template 'account_sheet' renders account records, not ticket",
        "render_document: no active document template 'gone'",
    ]


def test_a_notification_lists_records_as_each_recipient_reads_them(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    grant: Callable[[Record, str], None],
    rows: Callable[..., list[Record]],
    worker: Worker,
) -> None:
    boss = create("user", username="boss", display_name="主管", is_admin=True)
    temp = create("user", username="temp", display_name="临时工")
    grant(temp, "nobody_reads")
    rule(
        "同省客户",
        "ticket",
        {"created": {}},
        [
            {
                "notify": {
                    "users": ["boss", "temp"],
                    "title": "新工单：{subject}",
                    "body": "客户 {account.name}",
                    "lists": [
                        {
                            "heading": "同省客户 {count} 家",
                            "entity": "account",
                            "filter": {"province": {"eq": "=account.province"}},
                            "order_by": [{"field": "name"}],
                            "first": 2,
                            "line": "{name}（{city}）",
                        },
                        {
                            "heading": "未填省份的客户",
                            "entity": "account",
                            "filter": {"province": {"eq": "=serial_number"}},
                            "line": "{name}",
                            "empty": "没有",
                        },
                    ],
                }
            }
        ],
    )
    for name, city in (("甲厂", "宁波"), ("乙厂", "杭州"), ("丙厂", "温州")):
        create("account", name=name, province="浙江", city=city)
    create("account", name="北京客户", province="北京")
    ticket = create("ticket", subject="报警", account=rows("account", name="甲厂")[0]["id"])
    drain(worker)
    (told,) = rows("notification", owner_id=boss["id"])
    assert (
        told["body"] == "客户 甲厂\n同省客户 3 家：丙厂（温州）；乙厂（杭州）\n未填省份的客户：没有"
    )
    (hidden,) = rows("notification", owner_id=temp["id"])
    assert hidden["body"] == "客户 甲厂\n同省客户 0 家：无\n未填省份的客户：没有"
    assert told["link_id"] == hidden["link_id"] == ticket["id"]


def test_each_runtime_keeps_its_own_rules_and_a_closed_ones_has_none(
    qiao_config: Config, qiao_runtime: Runtime, rule: Callable[..., Record]
) -> None:
    """A worker fans events out against its own runtime's rules, never another's."""
    rule("任意", "ticket", {"created": {}}, [{"set": {"priority": "HIGH"}}])
    other = Runtime(qiao_config)
    other.current()
    other.start()
    cache = rules_of(other)
    assert cache is rules_of(other) and cache is not rules_of(qiao_runtime)
    assert cache.get().event_entities == {"ticket"}
    other.close()
    assert cache.get().rules == ()
