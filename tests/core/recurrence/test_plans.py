"""Recurring plans: one record per due date, ahead of time, replayed with the clock."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.errors import ConfigurationError
from qiao.core.events.model import Delivery, Event
from qiao.core.events.timers import pending
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.context import Actor, Source
from qiao.core.recurrence import plans as plan_engine
from qiao.core.recurrence.declaration import Every, PlanDecl
from qiao.core.recurrence.plugin import plans
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
STATUS = [{"value": v, "label": {"en": v}} for v in ("ACTIVE", "RETIRED")]
MANIFEST: dict[str, Any] = {
    "entities": [
        {
            "name": "device",
            "plural": "devices",
            "label": {"en": "Device", "zh-CN": "设备"},
            "fields": [
                {"name": "name", "type": "string", "label": {"zh-CN": "名称"}},
                {"name": "installed_on", "type": "date", "label": {"zh-CN": "安装日期"}},
                {"name": "warranty_until", "type": "date", "label": {"zh-CN": "保修截止"}},
                {
                    "name": "status",
                    "type": "enum",
                    "default": "ACTIVE",
                    "values": STATUS,
                    "label": {"zh-CN": "状态"},
                },
            ],
        },
        {
            "name": "maintenance",
            "plural": "maintenances",
            "label": {"en": "Maintenance", "zh-CN": "保养工单"},
            "fields": [
                {"name": "subject", "type": "string", "label": {"zh-CN": "主题"}},
                {
                    "name": "device",
                    "type": "relation",
                    "target": "device",
                    "inverse": "maintenances",
                    "label": {"zh-CN": "设备"},
                },
                {"name": "due_on", "type": "date", "label": {"zh-CN": "到期日"}},
                {"name": "completed_on", "type": "date", "label": {"zh-CN": "完成日期"}},
            ],
        },
    ],
    "recurring_plans": [
        {
            "name": "half_yearly_service",
            "entity": "device",
            "anchor": "installed_on",
            "every": {"months": 6},
            "lead_days": 14,
            "until": "warranty_until",
            "when": 'status = "ACTIVE"',
            "create": {
                "entity": "maintenance",
                "link": "device",
                "due_field": "due_on",
                "values": {"subject": '="定期保养 " & name'},
            },
        },
        {
            "name": "inspection",
            "entity": "device",
            "anchor": "installed_on",
            "every": {"months": 3},
            "reschedule_from": "completed_on",
            "create": {
                "entity": "maintenance",
                "link": "device",
                "due_field": "due_on",
                "values": {"subject": "巡检"},
            },
        },
    ],
}
TICKETS = """query($id: ID!) { device(id: $id) {
  maintenances(orderBy: [{field: DUE_ON, direction: ASC}]) { edges { node { id subject dueOn } } }
} }"""


class Declares:
    __name__ = "recurrence_fixture"

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest(MANIFEST, self.__name__, "service.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Declares()]


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(0), tzinfo=SHANGHAI)


def tickets(client: GraphQLClient, device: str, subject: str) -> list[str]:
    edges = client.data(TICKETS, {"id": device})["device"]["maintenances"]["edges"]
    return [e["node"]["dueOn"] for e in edges if e["node"]["subject"].startswith(subject)]


def test_a_ticket_is_created_ahead_of_each_due_date(
    qiao_client: GraphQLClient, qiao_clock: TestClock, qiao_worker: Worker
) -> None:
    qiao_clock.set(at("2026-01-10"))
    device = qiao_client.data(
        'mutation { createDevice(input: {name: "数控车床 CK6140", installedOn: "2025-07-01", '
        'warrantyUntil: "2027-03-01"}) { id } }'
    )["createDevice"]["id"]
    drain(qiao_worker)
    assert tickets(qiao_client, device, "定期保养") == []  # 2026-01-01 has passed; next is 07-01
    qiao_clock.set(at("2026-06-16"))
    drain(qiao_worker)
    assert tickets(qiao_client, device, "定期保养") == []
    qiao_clock.set(at("2026-06-17"))  # 14 days ahead
    drain(qiao_worker)
    drain(qiao_worker)
    assert tickets(qiao_client, device, "定期保养 数控车床") == ["2026-07-01"]
    qiao_clock.set(at("2026-12-18"))
    drain(qiao_worker)
    assert tickets(qiao_client, device, "定期保养") == ["2026-07-01", "2027-01-01"]
    qiao_clock.set(at("2027-06-20"))  # 2027-07-01 is past the warranty: the plan ends
    drain(qiao_worker)
    assert tickets(qiao_client, device, "定期保养") == ["2026-07-01", "2027-01-01"]


def test_a_plan_counts_from_completion_when_it_says_so(
    qiao_client: GraphQLClient, qiao_clock: TestClock, qiao_worker: Worker
) -> None:
    qiao_clock.set(at("2026-01-10"))
    device = qiao_client.data(
        'mutation { createDevice(input: {name: "磨床", installedOn: "2026-01-05"}) { id } }'
    )["createDevice"]["id"]
    qiao_clock.set(at("2026-04-05"))
    drain(qiao_worker)
    assert tickets(qiao_client, device, "巡检") == ["2026-04-05"]
    qiao_clock.set(at("2026-07-06"))
    drain(qiao_worker)
    assert tickets(qiao_client, device, "巡检") == ["2026-04-05"]  # waits for completion
    edges = qiao_client.data(TICKETS, {"id": device})["device"]["maintenances"]["edges"]
    first = next(e["node"]["id"] for e in edges if e["node"]["subject"] == "巡检")
    qiao_client.data(
        'mutation($id: ID!) { updateMaintenance(id: $id, input: {completedOn: "2026-07-06"}) '
        "{ id } }",
        {"id": first},
    )
    qiao_clock.set(at("2026-10-06"))
    drain(qiao_worker)
    assert tickets(qiao_client, device, "巡检") == ["2026-04-05", "2026-10-06"]


def test_records_created_in_a_batch_are_followed_as_one_by_one(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    rows = [{"name": f"钻床 {i}", "installed_on": dt.date(2026, 1, i + 1)} for i in range(3)]
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        devices = records.create_many(ctx, "device", rows).records
    with qiao_runtime.db.read() as conn:
        armed = [pending(conn, "device", d["id"]) for d in devices]
    assert [sorted(timers) for timers in armed] == [
        ["plan:half_yearly_service", "plan:inspection"]
    ] * 3
    assert len({timers["plan:inspection"] for timers in armed}) == 3


def test_reruns_and_concurrent_workers_create_one_record(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        device = records.create(
            ctx, "device", {"name": "钻床", "installed_on": dt.date(2026, 1, 1)}
        )
    with qiao_runtime.db.read() as conn:
        assert "plan:half_yearly_service" in pending(conn, "device", device["id"])
    event = Event(
        id="e",
        entity="device",
        record_id=device["id"],
        operation="timer",
        changes={},
        actor="system",
        actor_id=None,
        source="system",
        request_id="r",
        created_at=dt.datetime.now(dt.UTC),
        timer="plan:half_yearly_service",
        payload={"plan": "half_yearly_service", "due_on": "2026-07-01", "base": "2026-01-01"},
    )
    delivery = Delivery("d", plan_engine.HANDLER, 1, event, qiao_runtime)
    checked = plans(qiao_runtime)
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        try:
            plan_engine.fire(qiao_runtime, checked, delivery)
        except BaseException as exc:  # a loser of the race fails its attempt; retried later
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plan_engine.fire(qiao_runtime, checked, delivery)  # a retried delivery
    with qiao_runtime.db.read() as conn:
        made = records.list(
            conn, "maintenance", filter={"due_on": {"eq": "2026-07-01"}}, actor=Actor.system()
        )
    assert len(made.records) == 1
    assert all(getattr(exc, "code", None) == "CONFLICT" for exc in failures)


def test_months_keep_to_the_month_end() -> None:
    every = Every(months=1)
    start = dt.date(2026, 1, 31)
    assert [every.after(start, n) for n in (1, 2, 3)] == [
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
        dt.date(2026, 4, 30),
    ]


def test_an_interval_read_from_each_record_is_a_formula_counted_before_use() -> None:
    every = Every(days="=interval_days")
    assert every.formula == "interval_days"
    with pytest.raises(ValueError, match="count it for a record first"):
        every.after(dt.date(2026, 5, 20), 1)
    assert every.counted(90).after(dt.date(2026, 5, 20), 1) == dt.date(2026, 8, 18)
    for wrong in ({"days": "90"}, {"weeks": 0}, {"days": "="}):
        with pytest.raises(ValueError):
            Every.model_validate(wrong)


def test_a_plan_refuses_formulas_and_relation_paths_that_do_not_fit(
    qiao_runtime: Runtime,
) -> None:
    def decl(days: str, device: str) -> PlanDecl:
        return PlanDecl.model_validate(
            {
                "name": "checkup",
                "entity": "device",
                "anchor": "installed_on",
                "every": {"days": days},
                "lead_days": "=3",
                "create": {"entity": "maintenance", "values": {"device": device}},
            }
        )

    catalog = qiao_runtime.current()
    with pytest.raises(ConfigurationError, match="unknown function NOPE"):
        plan_engine.Plan.of(catalog, decl("=NOPE(name)", "@device"))
    with pytest.raises(ConfigurationError, match=r"device\.status is not a relation"):
        plan_engine.Plan.of(catalog, decl("=30", "@status"))
