"""Pipelines: allowed moves, guards, required fields, history and time in stage.

Every test runs on SQLite and PostgreSQL through the records service, as the
system and as a salesperson; the clock is the runtime's, moved by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock

START = dt.datetime(2026, 4, 1, 1, 0, tzinfo=dt.UTC)

STAGES = [
    {"state": "QUALIFICATION", "next": ["NEEDS_ANALYSIS", "CLOSED_LOST"]},
    {
        "state": "NEEDS_ANALYSIS",
        "next": ["PROPOSAL", "CLOSED_LOST"],
        "required": ["contact", "close_date"],
    },
    {
        "state": "PROPOSAL",
        "next": ["NEGOTIATION", "CLOSED_LOST"],
        "guards": [{"when": "amount >= 10000", "message": "报价阶段金额须不低于 1 万元"}],
    },
    {"state": "NEGOTIATION", "next": ["CLOSED_WON", "CLOSED_LOST"]},
    {"state": "CLOSED_WON", "on_enter": [{"set": {"probability": 100}}]},
    {"state": "CLOSED_LOST"},
]


@pytest.fixture
def sales(
    qiao_runtime: Runtime, create: Callable[..., Record], define: Any, qiao_clock: TestClock
) -> Any:
    qiao_clock.set(START)
    define(
        "pipeline",
        {
            "name": "opportunity_sales",
            "entity": "opportunity",
            "field": "stage",
            "initial": ["QUALIFICATION"],
            "stages": STAGES,
        },
    )
    account = create("account", name="苏州精工机床有限公司")
    contact = create("contact", name="王工", account=account["id"])
    return {"account": account, "contact": contact}


def _update(runtime: Runtime, entity: str, record_id: str, **values: Any) -> Record:
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return runtime.records.update(ctx, entity, record_id, values)


def _history(runtime: Runtime, record_id: str) -> list[Record]:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn,
            "stage_history",
            filter={"record_id": {"eq": record_id}},
            first=50,
            actor=Actor.system(),
        )
    return sorted(page.records, key=lambda r: r["entered_at"])


def test_allowed_moves_pass_and_others_are_refused_naming_the_next_states(
    qiao_runtime: Runtime, create: Callable[..., Record], sales: Any
) -> None:
    opp = create("opportunity", name="五轴加工中心", account=sales["account"]["id"])
    assert opp["stage"] == "QUALIFICATION"
    with pytest.raises(BadUserInput) as refused:
        _update(qiao_runtime, "opportunity", opp["id"], stage="CLOSED_WON")
    assert refused.value.field == "stage"
    assert "allowed next: NEEDS_ANALYSIS, CLOSED_LOST" in refused.value.message
    assert refused.value.details["allowed"] == ["NEEDS_ANALYSIS", "CLOSED_LOST"]
    lost = _update(qiao_runtime, "opportunity", opp["id"], stage="CLOSED_LOST")
    assert lost["stage"] == "CLOSED_LOST"
    with pytest.raises(BadUserInput, match="none: it is a final stage"):
        _update(qiao_runtime, "opportunity", opp["id"], stage="QUALIFICATION")


def test_a_new_record_starts_in_an_initial_state(create: Callable[..., Record], sales: Any) -> None:
    with pytest.raises(BadUserInput, match="starts in QUALIFICATION, not PROPOSAL") as refused:
        create("opportunity", name="直接报价", account=sales["account"]["id"], stage="PROPOSAL")
    assert refused.value.field == "stage"


def test_a_batch_of_creates_is_held_to_the_pipeline_row_by_row(
    qiao_runtime: Runtime, sales: Any
) -> None:
    records = qiao_runtime.records
    rows = [
        {"name": "主轴", "account": sales["account"]["id"]},
        {"name": "直接报价", "account": sales["account"]["id"], "stage": "PROPOSAL"},
    ]
    refused = pytest.raises(BadUserInput, match="starts in QUALIFICATION, not PROPOSAL")
    with refused, records.transaction(Actor.system(), Source.IMPORT) as ctx:
        records.create_many(ctx, "opportunity", rows)
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        created = records.create_many(ctx, "opportunity", rows[:1] * 2).records
    assert [r["stage"] for r in created] == ["QUALIFICATION", "QUALIFICATION"]
    for opp in created:
        assert [(s["from_state"], s["to_state"]) for s in _history(qiao_runtime, opp["id"])] == [
            (None, "QUALIFICATION")
        ]


def test_fields_required_on_entering_are_named_and_nothing_is_written(
    qiao_runtime: Runtime, create: Callable[..., Record], get: Any, sales: Any
) -> None:
    opp = create("opportunity", name="数控车床", account=sales["account"]["id"])
    with pytest.raises(BadUserInput) as refused:
        _update(qiao_runtime, "opportunity", opp["id"], stage="NEEDS_ANALYSIS")
    assert refused.value.message == (
        "entering NEEDS_ANALYSIS needs contact, close_date (pipeline opportunity_sales)"
    )
    assert refused.value.field == "contact"
    assert get("opportunity", opp["id"])["stage"] == "QUALIFICATION"
    assert len(_history(qiao_runtime, opp["id"])) == 1
    moved = _update(
        qiao_runtime,
        "opportunity",
        opp["id"],
        stage="NEEDS_ANALYSIS",
        contact=sales["contact"]["id"],
        close_date=dt.date(2026, 6, 30),
    )
    assert moved["stage"] == "NEEDS_ANALYSIS"


def test_guards_read_the_record_as_it_will_be_after_the_write(
    qiao_runtime: Runtime, create: Callable[..., Record], sales: Any
) -> None:
    opp = create(
        "opportunity",
        name="激光切割机",
        account=sales["account"]["id"],
        contact=sales["contact"]["id"],
        close_date=dt.date(2026, 6, 30),
        amount="9999.99",
    )
    _update(qiao_runtime, "opportunity", opp["id"], stage="NEEDS_ANALYSIS")
    with pytest.raises(BadUserInput, match="报价阶段金额须不低于 1 万元") as refused:
        _update(qiao_runtime, "opportunity", opp["id"], stage="PROPOSAL")
    assert refused.value.field == "stage"
    moved = _update(qiao_runtime, "opportunity", opp["id"], stage="PROPOSAL", amount="10000.00")
    assert moved["stage"] == "PROPOSAL"


def test_history_records_each_stay_with_its_exact_time_in_stage(
    qiao_runtime: Runtime, create: Callable[..., Record], qiao_clock: TestClock, sales: Any
) -> None:
    opp = create(
        "opportunity",
        name="磨床改造",
        account=sales["account"]["id"],
        contact=sales["contact"]["id"],
        close_date=dt.date(2026, 6, 30),
    )
    qiao_clock.advance(hours=26, seconds=7)
    _update(qiao_runtime, "opportunity", opp["id"], stage="NEEDS_ANALYSIS")
    qiao_clock.advance(minutes=90)
    _update(qiao_runtime, "opportunity", opp["id"], stage="CLOSED_LOST")
    stays = _history(qiao_runtime, opp["id"])
    assert [(s["from_state"], s["to_state"]) for s in stays] == [
        (None, "QUALIFICATION"),
        ("QUALIFICATION", "NEEDS_ANALYSIS"),
        ("NEEDS_ANALYSIS", "CLOSED_LOST"),
    ]
    assert [s["seconds_in_stage"] for s in stays] == [26 * 3600 + 7, 90 * 60, None]
    assert stays[0]["entered_at"] == START
    assert (
        stays[1]["entered_at"] == stays[0]["left_at"] == START + dt.timedelta(hours=26, seconds=7)
    )
    assert stays[2]["left_at"] is None


def test_an_edit_that_keeps_the_state_adds_no_history(
    qiao_runtime: Runtime, create: Callable[..., Record], sales: Any
) -> None:
    opp = create("opportunity", name="折弯机", account=sales["account"]["id"])
    _update(qiao_runtime, "opportunity", opp["id"], amount="500.00", stage="QUALIFICATION")
    assert len(_history(qiao_runtime, opp["id"])) == 1


def test_an_inactive_pipeline_enforces_nothing(
    qiao_runtime: Runtime, create: Callable[..., Record], sales: Any
) -> None:
    with qiao_runtime.db.read() as conn:
        pipeline = qiao_runtime.records.list(
            conn, "pipeline", first=1, actor=Actor.system()
        ).records[0]
    _update(qiao_runtime, "pipeline", pipeline["id"], active=False)
    opp = create("opportunity", name="冲床", account=sales["account"]["id"])
    assert _update(qiao_runtime, "opportunity", opp["id"], stage="CLOSED_WON")["stage"] == (
        "CLOSED_WON"
    )


def test_entering_a_stage_runs_its_actions_in_the_same_transaction(
    qiao_runtime: Runtime, create: Callable[..., Record], get: Any, sales: Any
) -> None:
    opp = create(
        "opportunity",
        name="卧式加工中心",
        account=sales["account"]["id"],
        contact=sales["contact"]["id"],
        close_date=dt.date(2026, 6, 30),
        amount="880000.00",
        probability=60,
    )
    for stage in ("NEEDS_ANALYSIS", "PROPOSAL", "NEGOTIATION"):
        _update(qiao_runtime, "opportunity", opp["id"], stage=stage)
    assert get("opportunity", opp["id"])["probability"] == 60
    _update(qiao_runtime, "opportunity", opp["id"], stage="CLOSED_WON")
    won = get("opportunity", opp["id"])
    assert (won["stage"], won["probability"]) == ("CLOSED_WON", 100)
    assert [s["to_state"] for s in _history(qiao_runtime, opp["id"])][-1] == "CLOSED_WON"
