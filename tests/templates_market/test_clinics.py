"""The clinics template's behaviour beyond the day of tests/scenarios/test_clinics_day.py:
follow-up days as written by people, the cap on retried calls, and plans that do not apply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from qiao.templates_market.clinics.followup import days_after


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("clinics",)


def test_follow_up_days_are_read_as_people_write_them() -> None:
    assert days_after("30, 3，7 3") == [3, 7, 30]
    with pytest.raises(BadUserInput, match="不能是 '一周'"):
        days_after("3, 一周")
    with pytest.raises(BadUserInput):
        days_after("3, 5000")


@pytest.fixture
def visit_values(qiao_runtime: Runtime) -> dict[str, Any]:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        doctor = records.create(ctx, "user", {"username": "zhang", "display_name": "张医生"})
        patient = records.create(ctx, "patient", {"record_number": "P1", "name": "刘晓梅"})
        for purpose in ("treatment", "follow_up"):
            records.create(
                ctx,
                "consent",
                {
                    "subject_entity": "patient",
                    "subject_id": patient["id"],
                    "purpose": purpose,
                    "sensitive": True,
                    "granted_at": "2026-01-01T09:00:00+08:00",
                },
            )
        records.create(
            ctx, "followup_template", {"name": "拔牙", "diagnosis_prefix": "K08", "days_after": "3"}
        )
        records.create(
            ctx,
            "followup_template",
            {"name": "停用", "diagnosis_prefix": "K0", "days_after": "1", "active": False},
        )
    return {"patientId": patient["id"], "doctorId": doctor["id"], "visitedOn": "2026-04-08"}


VISIT = "mutation($i: VisitCreateInput!) { createVisit(input: $i) { id } }"
TASKS = "{ followupTasks { edges { node { id title status dueOn attempts } } } }"
CALL = """mutation($id: ID!, $s: FollowupTaskStatus!) {
  updateFollowupTask(id: $id, input: {status: $s}) { status } }"""


def test_unanswered_calls_are_retried_twice_then_left_as_they_are(
    qiao_client: GraphQLClient, qiao_worker: Worker, visit_values: dict[str, Any]
) -> None:
    open_visit = {**visit_values, "diagnosisCode": "K08.1"}
    qiao_client.data(VISIT, {"i": open_visit})
    assert qiao_client.data(TASKS)["followupTasks"]["edges"] == [], "an open visit plans nothing"
    other = {**visit_values, "diagnosisCode": "J06.9", "status": "CLOSED"}
    qiao_client.data(VISIT, {"i": other})
    assert qiao_client.data(TASKS)["followupTasks"]["edges"] == [], "no plan for J06"

    qiao_client.data(VISIT, {"i": {**open_visit, "status": "CLOSED"}})
    (edge,) = qiao_client.data(TASKS)["followupTasks"]["edges"]
    task = edge["node"]
    assert (task["title"], task["dueOn"]) == ("拔牙：刘晓梅 第 3 天", "2026-04-13")
    seen = []
    for _ in range(3):
        qiao_client.data(CALL, {"id": task["id"], "s": "NO_ANSWER"})
        drain(qiao_worker)
        (edge,) = qiao_client.data(TASKS)["followupTasks"]["edges"]
        seen.append((edge["node"]["status"], edge["node"]["attempts"]))
    assert seen == [("PENDING", 1), ("PENDING", 2), ("NO_ANSWER", 3)]


def test_an_appointment_booked_without_an_end_takes_half_an_hour(
    qiao_client: GraphQLClient, visit_values: dict[str, Any]
) -> None:
    booked = qiao_client.data(
        """mutation($p: ID!) { createAppointment(input: {patientId: $p, department: DENTAL,
             startsAt: "2026-05-06T09:00:00+08:00"}) { endsAt } }""",
        {"p": visit_values["patientId"]},
    )
    assert booked == {"createAppointment": {"endsAt": "2026-05-06T01:30:00.000000+00:00"}}
