"""Every lead, whoever writes it, is located, tagged, checked for duplicates and assigned."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.plugins.leads import dedupe

Create = Callable[..., Record]


def test_urgent_hydraulic_valve_samples_are_high_intent_and_industrial(create: Create) -> None:
    lead = create("lead", name="陈工", description="急需液压阀样品")
    assert lead["intent_score"] >= 70
    assert lead["intent_tags"] == ["高意向", "工业客户"]


def test_a_lead_without_intent_words_scores_low(create: Create) -> None:
    lead = create("lead", name="路人", description="只是看看，暂无需求")
    assert lead["intent_score"] == 0
    assert lead["intent_tags"] == ["低意向"]


def test_province_city_and_region_come_from_the_landline_area_code(create: Create) -> None:
    lead = create("lead", name="叶明", mobile="0574-8690 1158")
    assert (lead["province"], lead["city"], lead["region"]) == ("浙江", "宁波", "华东")


def test_address_wins_over_the_phone(create: Create) -> None:
    lead = create("lead", name="梁", mobile="13957306618", address="广东省东莞市长安镇")
    assert (lead["province"], lead["city"], lead["region"]) == ("广东", "东莞", "华南")


def test_rules_assign_in_order_and_round_robin_alternates(
    create: Create, sales_team: dict[str, Record]
) -> None:
    urgent = create("lead", name="甲", industry="液压件", description="急需液压阀样品报价")
    assert urgent["owner_id"] == sales_team["wang"]["id"]
    owners = [
        create("lead", name=f"客户{i}", mobile=f"0574-8690 11{i}0")["owner_id"] for i in range(4)
    ]
    li, zhang = sales_team["li"]["id"], sales_team["zhang"]["id"]
    assert owners == [li, zhang, li, zhang]


def test_an_assigned_lead_is_due_a_first_touch(create: Create, sales_team: Any) -> None:
    lead = create("lead", name="乙", mobile="0574-86901234")
    assert lead["first_touch_due_at"] - lead["assigned_at"] == dt.timedelta(minutes=30)
    assert lead["assignment_rule_id"] is not None


def test_no_rule_matches_leaves_the_lead_unassigned(create: Create, sales_team: Any) -> None:
    lead = create("lead", name="丙", mobile="13926359918")  # a Guangdong mobile
    assert lead["owner_id"] is None and lead["region"] == "华南"


def test_working_hours_pass_a_rule_over_outside_them(create: Create) -> None:
    user = create("user", username="night", display_name="夜班")
    create(
        "lead_assignment_rule",
        name="never",
        position=1,
        strategy="USER",
        user=user["id"],
        working_hours={"days": [8]},
    )
    assert create("lead", name="丁")["owner_id"] is None


def test_duplicates_of_leads_contacts_and_accounts_are_recorded(create: Create) -> None:
    account = create("account", name="宁波东海汽车零部件有限公司")
    first = create("lead", name="林晓燕", mobile="13857412096")
    contact = create("contact", name="叶明", email="yeming@donghai.example.com")
    lead = create(
        "lead",
        name="林小姐",
        mobile="+86 138-5741-2096",
        email="YeMing@DongHai.example.com",
        company="宁波东海汽车零部件",
    )
    found = {(m["entity"], m["id"], m["by"]) for m in lead["duplicate_matches"]}
    assert found == {
        ("lead", first["id"], "phone"),
        ("contact", contact["id"], "email"),
        ("account", account["id"], "company"),
    }
    assert lead["duplicate_of_id"] == first["id"]


def test_the_first_activity_is_the_first_touch(create: Create, get: Any) -> None:
    lead = create("lead", name="戊")
    later = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    create("activity", kind="CALL", occurred_at=later, lead=lead["id"])
    create("activity", kind="CALL", occurred_at=later - dt.timedelta(hours=1), lead=lead["id"])
    create("activity", kind="VISIT", occurred_at=later + dt.timedelta(hours=1), lead=lead["id"])
    stored = get("lead", lead["id"])
    assert stored["first_touch_at"] == later - dt.timedelta(hours=1)
    assert stored["status"] == "CONTACTED"


@pytest.mark.parametrize("batch_read", [dedupe.BATCH_READ, 2])
def test_leads_written_together_find_what_each_would_find_alone(
    qiao_runtime: Runtime, create: Create, monkeypatch: pytest.MonkeyPatch, batch_read: int
) -> None:
    """One lookup per entity for a batch (and, past ``BATCH_READ`` matches, one per lead)
    gives each lead the same matches, in the same order, as writing it alone."""
    monkeypatch.setattr(dedupe, "BATCH_READ", batch_read)
    account = create("account", name="宁波东海汽车零部件有限公司")
    earlier = [create("lead", name=f"林{i}", mobile="13857412096") for i in range(6)]
    contact = create("contact", name="叶明", email="yeming@donghai.example.com")
    rows: list[dict[str, Any]] = [
        {"name": "林小姐", "mobile": "+86 138-5741-2096"},
        {"name": "叶先生", "email": "YeMing@DongHai.example.com", "company": "宁波东海汽车零部件"},
        {"name": "新客户", "mobile": "13905740004"},
    ]
    records = qiao_runtime.records
    with qiao_runtime.db.read() as conn:  # each lead looked up alone, as a web form's is
        alone = [dedupe.find_existing(conn, records, dedupe.lead_keys(r)) for r in rows]
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        together = records.create_many(ctx, "lead", [dict(r) for r in rows]).records
    for batched, matches in zip(together, alone, strict=True):
        assert batched["duplicate_matches"] == ([m.as_json() for m in matches] or None)
    phone, mail, fresh = together
    assert [m["id"] for m in phone["duplicate_matches"]] == [e["id"] for e in earlier[:5]]
    assert phone["duplicate_of_id"] == earlier[0]["id"]
    assert {(m["entity"], m["id"], m["by"]) for m in mail["duplicate_matches"]} == {
        ("contact", contact["id"], "email"),
        ("account", account["id"], "company"),
    }
    assert fresh["duplicate_matches"] is None and fresh["duplicate_of_id"] is None
