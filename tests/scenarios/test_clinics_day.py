"""A clinic's working day and its follow-up calls, on the clinics template.

Through GraphQL on the real server, as the clinic's people, on SQLite and
PostgreSQL. The administrator sets and advances the deployment's replay clock
(``setClock``, ``advanceClock``) to the story's times and runs what fell due, as
an integrator replays the day (docs/templates/clinics.md, docs/clock.md):

- patients' phones, ID numbers, addresses and allergies are stored SM4-encrypted
  and a phone still finds its patient; a new patient gets the next record number
  (病历号) and appointments the day's running numbers;
- an appointment's reminder goes out 24 hours before, exactly once, in the app and
  on the notification channels; the evening job marks the appointment nobody came
  to as 爽约; the front desk sees the visit without its diagnosis, marketing sees
  no medical data;
- a closed visit's diagnosis starts its follow-up plan (+3 / +7 / +30 days) for a
  patient who consented to follow-up, each call on a working day of the ``cn``
  calendar; an unanswered call is retried the next working day, and a task not
  done in time expires with its doctor told;
- a patient's erasure request deletes the marketing profile and the marketing and
  follow-up consents, and keeps the medical record, reported with its date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import text

from qiao.core.config import Config
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock, controllable

from .conftest import RecordingChannel, Replay, staff, standstill

pytestmark = pytest.mark.storage
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PEOPLE = {
    "zhang": ("张医生", "physician"),
    "luo": ("罗护士", "nurse"),
    "he": ("何前台", "front_desk"),
    "zhou": ("周主任", "clinic_manager"),
    "ma": ("马市场", "clinic_marketing"),
}


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("clinics",)


@pytest.fixture
def qiao_config(qiao_config: Config) -> Config:
    return controllable(qiao_config)


@pytest.fixture
def qiao_clock() -> TestClock:
    return standstill()


def at(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


@pytest.fixture
def org(qiao_client: GraphQLClient, qiao_runtime: Runtime, replay: Replay) -> dict[str, Any]:
    """The clinic's people with their roles, on 7 April 2026; returns their ids and tokens."""
    replay.set(at(4, 7, 8))
    return staff(qiao_client, qiao_runtime, PEOPLE)


@pytest.fixture
def tokens(org: dict[str, Any]) -> dict[str, str]:
    return org["token"]


def create(client: GraphQLClient, entity: str, values: dict[str, Any], fields: str = "id") -> Any:
    name = entity[0].upper() + entity[1:]
    query = f"mutation($i: {name}CreateInput!) {{ create{name}(input: $i) {{ {fields} }} }}"
    return client.data(query, {"i": values})[f"create{name}"]


def update(
    client: GraphQLClient, entity: str, id: str, values: dict[str, Any], fields: str = "id"
) -> Any:
    name = entity[0].upper() + entity[1:]
    query = (
        f"mutation($id: ID!, $i: {name}UpdateInput!) "
        f"{{ update{name}(id: $id, input: $i) {{ {fields} }} }}"
    )
    return client.data(query, {"id": id, "i": values})[f"update{name}"]


def rearm(admin: GraphQLClient, rule: str) -> None:
    """Save a scheduled rule so that it arms its next run from the story's clock."""
    found = admin.data(
        "query($n: String!) { automationRules(filter: {name: {eq: $n}}) "
        "{ edges { node { id } } } }",
        {"n": rule},
    )
    (edge,) = found["automationRules"]["edges"]
    update(admin, "automationRule", edge["node"]["id"], {"description": f"{rule}（重放）"})


@pytest.fixture
def patients(client_for: Callable[[str], GraphQLClient], org: dict[str, Any]) -> dict[str, str]:
    he = client_for("he")
    liu = {
        "recordNumber": "JH-000118",
        "name": "刘晓梅",
        "birthDate": "1988-04-12",
        "phone": "13688012345",
        "idNumber": "510104198804120025",
        "address": "成都市锦江区书院西街 18 号",
        "allergies": "青霉素过敏",
    }
    # 刘晓梅 brings her number from the clinic's old system; 唐建国 is given the first new one.
    tang = {"name": "唐建国", "phone": "18180023456"}
    made = {"liu": create(he, "patient", liu)["id"]}
    new = create(he, "patient", tang, "id recordNumber")
    assert new["recordNumber"] == "BL00000001"
    made["tang"] = new["id"]
    # Both consent to treatment (health data: separate consent); only 刘晓梅 to follow-up.
    for who, purpose in (("liu", "treatment"), ("liu", "follow_up"), ("tang", "treatment")):
        consent = {
            "subjectEntity": "patient",
            "subjectId": made[who],
            "purpose": purpose,
            "sensitive": True,
            "givenBy": "SUBJECT",
            "grantedAt": "2026-04-07T08:00:00+08:00",
        }
        create(he, "consent", consent)
    return made


def test_reminder_check_in_and_no_show(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    qiao_runtime: Runtime,
    wecom: RecordingChannel,
    org: dict[str, Any],
    patients: dict[str, str],
) -> None:
    he, zhang, ma = client_for("he"), client_for("zhang"), client_for("ma")
    ids = org["id"]
    rearm(qiao_client, "每日标记爽约")

    # Personal data is ciphertext in the table, and a phone typed any way finds the patient.
    with qiao_runtime.db.read() as conn:
        stored = conn.execute(
            text("SELECT phone, id_number, address, allergies FROM patient WHERE id = :id"),
            {"id": patients["liu"]},
        ).one()
    assert all(value.startswith("sm4g:") for value in stored)
    found = he.data(
        '{ patients(filter: {phone: {eq: "136 8801 2345"}}) { edges { node { name allergies } } } }'
    )
    assert found["patients"]["edges"] == [{"node": {"name": "刘晓梅", "allergies": "青霉素过敏"}}]

    booking = {"doctorId": ids["zhang"], "department": "DENTAL"}
    first = create(
        he,
        "appointment",
        {
            **booking,
            "patientId": patients["liu"],
            "startsAt": at(4, 8, 9, 30).isoformat(),
            "endsAt": at(4, 8, 10).isoformat(),
            "reason": "右下智齿冠周炎复查",
        },
        "id appointmentNumber",
    )
    second = create(
        he,
        "appointment",
        {
            **booking,
            "patientId": patients["tang"],
            "startsAt": at(4, 8, 10).isoformat(),
            "endsAt": at(4, 8, 10, 30).isoformat(),
        },
        "id appointmentNumber",
    )
    # Numbered by the day they were booked on (7 April), in Shanghai time.
    assert [first["appointmentNumber"], second["appointmentNumber"]] == [
        "YY-20260407-001",
        "YY-20260407-002",
    ]
    first, second = first["id"], second["id"]

    # 张医生 is booked 09:30-10:00 and 10:00-10:30: a slot across them is refused.
    (clash,) = he.errors(
        "mutation($i: AppointmentCreateInput!) { createAppointment(input: $i) { id } }",
        {"i": {**booking, "patientId": patients["tang"], "startsAt": at(4, 8, 9, 45).isoformat()}},
    )
    assert clash["extensions"]["code"] == "CONFLICT"
    assert clash["message"].startswith("该医生在此时间已有预约")

    replay.set(at(4, 7, 9, 29, 59))
    replay.run_due()
    assert zhang.nodes("{ myNotifications { edges { node { title } } } }") == []
    replay.advance("1s", at(4, 7, 9, 30))
    replay.run_due()
    replay.advance("2h30m", at(4, 7, 12))
    replay.run_due()
    reminders = ["明日就诊提醒：刘晓梅 2026-04-08 09:30", "明日就诊提醒：唐建国 2026-04-08 10:00"]
    for person in (zhang, he):
        told = person.nodes("{ myNotifications { edges { node { title kind } } } }")
        assert sorted(n["title"] for n in told) == reminders
        assert {n["kind"] for n in told} == {"appointment_reminder"}
    pushed = [(ids[u], title) for u in ("zhang", "he") for title in reminders]
    assert sorted(wecom.pushed) == sorted(pushed)
    read = "query($id: ID!) { appointment(id: $id) { status reminderSentAt } }"
    assert he.data(read, {"id": first})["appointment"] == {
        "status": "SCHEDULED",
        "reminderSentAt": "2026-04-07T01:30:00.000000+00:00",
    }

    replay.advance("9h", at(4, 7, 21))  # the evening job finds nothing to mark yet
    replay.run_due()
    assert he.data(read, {"id": second})["appointment"]["status"] == "SCHEDULED"

    # 8 April: 刘晓梅 comes; 唐建国 does not.
    replay.advance("12h25m", at(4, 8, 9, 25))
    update(he, "appointment", first, {"status": "CHECKED_IN"})
    visit = create(
        zhang,
        "visit",
        {
            "patientId": patients["liu"],
            "appointmentId": first,
            "doctorId": ids["zhang"],
            "visitedOn": "2026-04-08",
            "complaint": "右下后牙肿痛三天",
        },
    )["id"]
    update(
        zhang,
        "visit",
        visit,
        {"diagnosisCode": "K05.2", "diagnosisText": "急性冠周炎", "status": "CLOSED"},
    )
    update(he, "appointment", first, {"status": "CHECKED_OUT"})
    update(he, "appointment", first, {"status": "CLOSED"})

    replay.advance("11h34m", at(4, 8, 20, 59))
    replay.run_due()
    assert he.data(read, {"id": second})["appointment"]["status"] == "SCHEDULED"
    replay.advance("1m", at(4, 8, 21))
    replay.run_due()
    assert he.data(read, {"id": second})["appointment"]["status"] == "NO_SHOW"
    assert he.data(read, {"id": first})["appointment"]["status"] == "CLOSED"
    assert sorted(wecom.pushed) == sorted(pushed), "each reminder went out once"

    # Only physicians read diagnoses; the front desk gets the visit with the diagnosis
    # withheld: null, and an error at its place.
    query = "query($id: ID!) { visit(id: $id) { visitedOn diagnosisCode } }"
    assert zhang.data(query, {"id": visit})["visit"] == {
        "visitedOn": "2026-04-08",
        "diagnosisCode": "K05.2",
    }
    assert he.post(query, {"id": visit}) == {
        "data": {"visit": {"visitedOn": "2026-04-08", "diagnosisCode": None}},
        "errors": [
            {
                "message": "you may not read Visit.diagnosisCode",
                "path": ["visit", "diagnosisCode"],
                "extensions": {"code": "FORBIDDEN", "field": "diagnosisCode"},
            }
        ],
    }
    assert he.data("query($id: ID!) { visit(id: $id) { visitedOn } }", {"id": visit}) == {
        "visit": {"visitedOn": "2026-04-08"}
    }
    # Marketing reads names and phones, and keeps its own profiles; nothing medical.
    profile = {"patientId": patients["liu"], "channel": "WECHAT", "interests": "牙齿美白"}
    (refusal,) = ma.errors(
        "mutation($i: MarketingProfileCreateInput!) { createMarketingProfile(input: $i) { id } }",
        {"i": profile},
    )
    assert refusal["extensions"] == {"code": "BAD_USER_INPUT", "field": "patient"}
    opt_in = {"subjectEntity": "patient", "subjectId": patients["liu"], "purpose": "marketing",
              "givenBy": "SUBJECT", "grantedAt": at(4, 8, 10).isoformat()}  # fmt: skip
    create(ma, "consent", opt_in)
    assert create(ma, "marketingProfile", profile, "channel interests") == {
        "channel": "WECHAT",
        "interests": "牙齿美白",
    }
    nothing = ma.data("{ visits { totalCount } appointments { totalCount } }")
    assert nothing == {"visits": {"totalCount": 0}, "appointments": {"totalCount": 0}}
    assert (
        ma.errors("{ patients { edges { node { allergies } } } }")[0]["extensions"]["code"]
        == "FORBIDDEN"
    )
    assert ma.data('{ patients(filter: {name: {eq: "刘晓梅"}}) { edges { node { phone } } } }')[
        "patients"
    ]["edges"] == [{"node": {"phone": "+8613688012345"}}]


def test_follow_up_plan_with_a_retry_and_an_expiry(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    org: dict[str, Any],
    patients: dict[str, str],
) -> None:
    zhang, luo, zhou = client_for("zhang"), client_for("luo"), client_for("zhou")
    ids = org["id"]
    rearm(qiao_client, "随访任务过期")
    create(
        zhou,
        "followupTemplate",
        {"name": "拔牙术后随访", "diagnosisPrefix": "K08", "daysAfter": "3, 7，30"},
    )
    bad = zhou.errors(
        "mutation { createFollowupTemplate(input: "
        '{name: "x", diagnosisPrefix: "J06", daysAfter: "3, 一周"}) { id } }'
    )
    assert bad[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "daysAfter"}
    nowhere = zhou.errors(
        "mutation { createFollowupTemplate(input: "
        '{name: "x", diagnosisPrefix: "J06", daysAfter: "3", calendar: "mars"}) { id } }'
    )
    assert (nowhere[0]["message"], nowhere[0]["extensions"]) == (
        "没有名为 'mars' 的节假日日历",
        {"code": "BAD_USER_INPUT", "field": "calendar"},
    )

    replay.set(at(4, 8, 10))
    visit = create(
        zhang,
        "visit",
        {
            "patientId": patients["liu"],
            "doctorId": ids["zhang"],
            "visitedOn": "2026-04-08",
            "diagnosisCode": "K08.1",
            "diagnosisText": "右下第三磨牙阻生，已拔除",
            "status": "CLOSED",
        },
    )["id"]
    tasks = """{ followupTasks(orderBy: [{field: DUE_ON}]) {
        edges { node { id title day dueOn status attempts doctor { username } } } } }"""
    planned = [e["node"] for e in luo.data(tasks)["followupTasks"]["edges"]]
    # Day 3 is Saturday 11 April: the call is planned for Monday the 13th.
    assert [(t["title"], t["day"], t["dueOn"], t["status"]) for t in planned] == [
        ("拔牙术后随访：刘晓梅 第 3 天", 3, "2026-04-13", "PENDING"),
        ("拔牙术后随访：刘晓梅 第 7 天", 7, "2026-04-15", "PENDING"),
        ("拔牙术后随访：刘晓梅 第 30 天", 30, "2026-05-08", "PENDING"),
    ]
    assert {t["doctor"]["username"] for t in planned} == {"zhang"}
    # 唐建国 consented to treatment only: his extraction plans no follow-up.
    tang = {"patientId": patients["tang"], "doctorId": ids["zhang"], "visitedOn": "2026-04-08",
            "diagnosisCode": "K08.2", "status": "CLOSED"}  # fmt: skip
    create(zhang, "visit", tang)
    assert len(luo.data(tasks)["followupTasks"]["edges"]) == 3
    first, second = planned[0]["id"], planned[1]["id"]
    assert zhang.data(
        "query($id: ID!) { visit(id: $id) { followupTasks { totalCount } } }", {"id": visit}
    ) == {"visit": {"followupTasks": {"totalCount": 3}}}

    # Friday 10 April, a day early: nobody answers; the call is due again on the next
    # working day, Monday the 13th, not over the weekend.
    replay.advance("2d", at(4, 10, 10))
    update(luo, "followupTask", first, {"status": "NO_ANSWER"})
    replay.run_due()
    read = "query($id: ID!) { followupTask(id: $id) { status dueOn attempts } }"
    assert luo.data(read, {"id": first})["followupTask"] == {
        "status": "PENDING",
        "dueOn": "2026-04-13",
        "attempts": 1,
    }
    # 13 April: nobody answers again; due on Tuesday the 14th.
    replay.set(at(4, 13, 10))
    update(luo, "followupTask", first, {"status": "NO_ANSWER"})
    replay.run_due()
    assert luo.data(read, {"id": first})["followupTask"] == {
        "status": "PENDING",
        "dueOn": "2026-04-14",
        "attempts": 2,
    }
    # 14 April: nobody calls. At 00:30 on the 15th the task expires and the doctor is told.
    replay.advance("14h30m", at(4, 14, 0, 30))
    replay.run_due()
    assert luo.data(read, {"id": first})["followupTask"]["status"] == "PENDING"
    replay.advance("1d", at(4, 15, 0, 30))
    replay.run_due()
    assert luo.data(read, {"id": first})["followupTask"] == {
        "status": "EXPIRED",
        "dueOn": "2026-04-14",
        "attempts": 2,
    }
    assert luo.data(read, {"id": second})["followupTask"]["status"] == "PENDING"
    told = zhang.nodes("{ myNotifications { edges { node { title body kind } } } }")
    assert told == [
        {
            "title": "随访任务已过期：拔牙术后随访：刘晓梅 第 3 天",
            "body": "计划随访日期 2026-04-14，已拨打 2 次",
            "kind": "followup_expired",
        }
    ]
    # 15 April: a relative answers; the outcome is recorded and no retry follows.
    replay.advance("8h30m", at(4, 15, 9))
    update(
        luo,
        "followupTask",
        second,
        {"status": "FAMILY_ANSWERED", "outcome": "家属代述：已不痛，创口愈合好"},
    )
    replay.run_due()
    assert luo.data(read, {"id": second})["followupTask"] == {
        "status": "FAMILY_ANSWERED",
        "dueOn": "2026-04-15",
        "attempts": 1,
    }


def test_an_erasure_request_keeps_the_medical_record_until_its_date(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    org: dict[str, Any],
    patients: dict[str, str],
) -> None:
    zhang, ma = client_for("zhang"), client_for("ma")
    liu = patients["liu"]
    replay.set(at(4, 8, 10))
    visit = {
        "patientId": liu,
        "doctorId": org["id"]["zhang"],
        "visitedOn": "2026-04-08",
        "complaint": "右下后牙肿痛三天",
        "diagnosisCode": "K05.2",
        "status": "CLOSED",
    }
    create(zhang, "visit", visit)
    opt_in = {
        "subjectEntity": "patient",
        "subjectId": liu,
        "purpose": "marketing",
        "givenBy": "SUBJECT",
        "grantedAt": at(4, 8, 10).isoformat(),
    }
    create(ma, "consent", opt_in)
    create(ma, "marketingProfile", {"patientId": liu, "interests": "牙齿美白"})

    replay.set(at(6, 1, 10))
    report = qiao_client.data(
        'mutation($id: ID!) { eraseSubject(entity: "patient", id: $id, reason: "本人申请删除") }',
        {"id": liu},
    )["eraseSubject"]
    erased = sorted((e["entity"], e["rule"], e["action"]) for e in report["erased"])
    kept = sorted((k["entity"], k["rule"], k["until"]) for k in report["kept"])
    assert erased == [("marketing_profile", "营销档案", "DELETED")]
    assert kept == [
        ("patient", "患者身份信息", "2041-04-08"),
        ("visit", "门诊病历", "2041-04-08"),
    ]
    reasons = {k["rule"]: k["reason"] for k in report["kept"]}
    assert (
        reasons["门诊病历"]
        == "《医疗机构病历管理规定》门诊病历自患者最后一次就诊之日起保存不少于15年"
    )

    # The marketing profile and the marketing and follow-up consents are gone; the medical
    # record, the patient's identity and the treatment consent it rests on stay.
    assert qiao_client.data("{ marketingProfiles { totalCount } }") == {
        "marketingProfiles": {"totalCount": 0}
    }
    consents = qiao_client.data(
        "query($id: String!) { consents(filter: {subjectId: {eq: $id}}) "
        "{ edges { node { purpose } } } }",
        {"id": liu},
    )
    assert [e["node"]["purpose"] for e in consents["consents"]["edges"]] == ["treatment"]
    record = zhang.data(
        "query($id: ID!) { patient(id: $id) { name lastVisitOn "
        "visits { edges { node { complaint } } } } }",
        {"id": liu},
    )
    assert record == {
        "patient": {
            "name": "刘晓梅",
            "lastVisitOn": "2026-04-08",
            "visits": {"edges": [{"node": {"complaint": "右下后牙肿痛三天"}}]},
        }
    }
    requests = qiao_client.data("{ erasureRequests { edges { node { subjectId reason } } } }")
    assert requests["erasureRequests"]["edges"] == [
        {"node": {"subjectId": liu, "reason": "本人申请删除"}}
    ]
