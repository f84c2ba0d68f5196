"""S8: a tutoring centre from a parent's inquiry to hours running low, on the education template.

Everything happens through GraphQL on the real server, as the centre's people, on
SQLite and PostgreSQL. The administrator sets and advances the deployment's replay
clock (``setClock``, ``advanceClock``) to the story's times and runs what fell due,
as an integrator replays it (docs/templates/education.md, docs/clock.md):

- a parent's words are matched to the three best courses, with the teacher's
  availability; a trial lesson is booked and held, which moves the inquiry to
  已试听 and gives the consultant a task due the next day; an inquiry nobody
  followed for 7 working days (of the ``cn`` calendar) goes back to the shared
  pool without its consultant;
- a child under 14 is refused until a guardian's consent is recorded; teachers
  read the students of their classes only, and a guardian's phone masked;
- fee payments for an academic course are refused when they break Hangzhou's
  prepaid-fee rule, naming the rule and the limit; present deducts hours, leave
  does not; the consultant gets one renewal task when the balance reaches 5 hours;
  enrolments get monthly contract numbers and accepted payments yearly receipt
  numbers, refused payments taking none;
- the dashboard's demand by hour and teacher load count exactly what happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.config import Config
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock, controllable

from .conftest import Replay, staff, standstill

pytestmark = pytest.mark.storage
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
RULE = "不符合预收费规则“杭州市学科类预收费”："
PEOPLE = {
    "gu": ("顾顾问", "course_consultant"),
    "lin": ("林老师", "teacher"),
    "xu": ("徐老师", "teacher"),
    "qian": ("钱校长", "principal"),
}


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "education")


@pytest.fixture
def qiao_config(qiao_config: Config) -> Config:
    return controllable(qiao_config)


@pytest.fixture
def qiao_clock() -> TestClock:
    return standstill()


@pytest.fixture
def org(qiao_client: GraphQLClient, qiao_runtime: Runtime, replay: Replay) -> dict[str, Any]:
    """The centre's people with their roles, on Monday 2 March 2026; their ids and tokens."""
    replay.set(MONDAY)
    return staff(qiao_client, qiao_runtime, PEOPLE)


@pytest.fixture
def tokens(org: dict[str, Any]) -> dict[str, str]:
    return org["token"]


def create(client: GraphQLClient, entity: str, values: dict[str, Any], fields: str = "id") -> Any:
    """``create<Entity>(input: values) { fields }`` through GraphQL."""
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


def refused(client: GraphQLClient, entity: str, values: dict[str, Any]) -> dict[str, Any]:
    """The one error of a refused create: its message and extensions."""
    name = entity[0].upper() + entity[1:]
    query = f"mutation($i: {name}CreateInput!) {{ create{name}(input: $i) {{ id }} }}"
    (error,) = client.errors(query, {"i": values})
    return {"message": error["message"], **error["extensions"]}


def at(day: int, hour: int, minute: int = 0) -> str:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI).isoformat()


@pytest.fixture
def centre(qiao_client: GraphQLClient, org: dict[str, Any]) -> dict[str, str]:
    """Rooms, four courses, two classes and Hangzhou's prepaid-fee rule, made by the admin."""
    admin, ids = qiao_client, org["id"]
    made: dict[str, str] = {}
    made["a101"] = create(admin, "classroom", {"name": "A101", "seats": 20})["id"]
    made["b203"] = create(admin, "classroom", {"name": "B203", "seats": 12})["id"]
    courses = [
        (
            "xsc",
            "QM-MATH-601",
            "小升初数学思维",
            "MATH",
            "ACADEMIC",
            "小升初, 数学, 奥数",
            "lin",
            "2026-05-01",
        ),
        (
            "math",
            "QM-MATH-301",
            "初三数学冲刺班",
            "MATH",
            "ACADEMIC",
            "中考, 数学, 初三",
            "lin",
            "2026-03-01",
        ),
        (
            "eng",
            "QM-ENG-201",
            "初二英语阅读与写作",
            "ENGLISH",
            "ACADEMIC",
            "英语, 阅读, 写作",
            "xu",
            "2026-03-01",
        ),
        (
            "py",
            "QM-PRG-101",
            "少儿 Python 编程入门",
            "PROGRAMMING",
            "NON_ACADEMIC",
            "编程, 启蒙, 少儿, Python",
            "xu",
            "2026-03-01",
        ),
    ]
    for key, code, name, subject, category, keywords, teacher, starts in courses:
        made[key] = create(
            admin,
            "course",
            {
                "code": code,
                "name": name,
                "subject": subject,
                "category": category,
                "keywords": keywords,
                "hourPrice": "150.00",
                "startsOn": starts,
                "teacherId": ids[teacher],
            },
        )["id"]
    made["k.math"] = create(
        admin,
        "schoolClass",
        {"name": "初三数学冲刺1班", "courseId": made["math"], "teacherId": ids["lin"]},
    )["id"]
    create(
        admin,
        "prepaidRule",
        {
            "name": "杭州市学科类预收费",
            "city": "杭州",
            "maxHours": "60.0",
            "maxMonths": 3,
            "renewBelowHours": "20.0",
            "earliestDaysBeforeStart": 30,
        },
    )
    return made


def rearm_pool(admin: GraphQLClient) -> None:
    """Save the pool rule, so that it arms its next 02:00 from the story's clock."""
    rules = admin.data(
        '{ automationRules(filter: {name: {eq: "超期未跟进退回公海"}}) { edges { node { id } } } }'
    )
    (rule,) = rules["automationRules"]["edges"]
    update(admin, "automationRule", rule["node"]["id"], {"description": "每天 02:00 退回公海"})


def test_inquiry_to_trial_to_pool(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    org: dict[str, Any],
    centre: dict[str, str],
) -> None:
    gu, lin = client_for("gu"), client_for("lin")
    ids = org["id"]
    # The pool rule runs at 02:00 each day; saving it arms it from the story's first day.
    rearm_pool(qiao_client)

    asked = "孩子六年级，想了解小升初数学，最好周六下午"
    zhou = create(
        gu,
        "inquiry",
        {
            "name": "周女士",
            "childName": "周雨桐",
            "interest": asked,
            "source": "WECOM",
            "ownerId": ids["gu"],
            "courseId": centre["xsc"],
        },
        "id stage lastFollowUpOn",
    )
    assert (zhou["stage"], zhou["lastFollowUpOn"]) == ("NEW", "2026-03-02")
    quiet = create(gu, "inquiry", {"name": "李先生", "interest": "英语", "ownerId": ids["gu"]})

    matches = gu.data(
        """query($t: String!, $s: DateTime!, $e: DateTime!) {
             matchCourses(text: $t, startsAt: $s, endsAt: $e) {
               code score keywords teacherFree } }""",
        {"t": asked, "s": at(7, 14), "e": at(7, 15)},
    )["matchCourses"]
    assert matches == [
        {"code": "QM-MATH-601", "score": 10, "keywords": ["小升初", "数学"], "teacherFree": True},
        {"code": "QM-MATH-301", "score": 4, "keywords": ["数学"], "teacherFree": True},
    ]
    # Words fitting all four courses propose the three best, ties by course code.
    broad = gu.data('{ matchCourses(text: "数学、英语和少儿编程都想了解") { code score } }')
    assert broad["matchCourses"] == [
        {"code": "QM-PRG-101", "score": 8},
        {"code": "QM-ENG-201", "score": 4},
        {"code": "QM-MATH-301", "score": 4},
    ]

    trial = create(
        gu,
        "lesson",
        {
            "kind": "TRIAL",
            "inquiryId": zhou["id"],
            "courseId": centre["xsc"],
            "teacherId": ids["lin"],
            "classroomId": centre["b203"],
            "startsAt": at(7, 14),
            "endsAt": at(7, 15),
            "hours": "1.0",
        },
    )
    inquiry = "query($id: ID!) { inquiry(id: $id) { stage lastFollowUpOn owner { username } } }"
    assert gu.data(inquiry, {"id": zhou["id"]})["inquiry"]["stage"] == "TRIAL_BOOKED"
    busy = gu.data(
        """query($s: DateTime!, $e: DateTime!) {
             matchCourses(text: "小升初", startsAt: $s, endsAt: $e) { code teacherFree } }""",
        {"s": at(7, 14, 30), "e": at(7, 16)},
    )["matchCourses"]
    assert busy == [{"code": "QM-MATH-601", "teacherFree": False}]
    # The timetable refuses a second lesson of 林老师 during the trial; touching it is fine.
    regular = {"courseId": centre["math"], "teacherId": ids["lin"], "classroomId": centre["a101"]}
    (clash,) = qiao_client.errors(
        "mutation($i: LessonCreateInput!) { createLesson(input: $i) { id } }",
        {"i": {**regular, "startsAt": at(7, 14, 30), "endsAt": at(7, 15, 30)}},
    )
    assert clash["extensions"]["code"] == "CONFLICT"
    assert clash["message"].startswith("该老师在此时间已有课")
    create(qiao_client, "lesson", {**regular, "startsAt": at(7, 15), "endsAt": at(7, 16)})
    # The trial's room is taken for 徐老师 too; and a class holds one lesson at a time.
    (taken,) = qiao_client.errors(
        "mutation($i: LessonCreateInput!) { createLesson(input: $i) { id } }",
        {"i": {**regular, "teacherId": ids["xu"], "classroomId": centre["b203"],
               "startsAt": at(7, 14, 30), "endsAt": at(7, 15, 30)}},
    )  # fmt: skip
    assert taken["extensions"]["code"] == "CONFLICT"
    assert taken["message"].startswith("该教室在此时间已被占用")
    klass = {"courseId": centre["math"], "schoolClassId": centre["k.math"]}
    create(qiao_client, "lesson", {**klass, "teacherId": ids["xu"], "classroomId": centre["a101"],
                                   "startsAt": at(7, 16), "endsAt": at(7, 17)})  # fmt: skip
    (busy_class,) = qiao_client.errors(
        "mutation($i: LessonCreateInput!) { createLesson(input: $i) { id } }",
        {"i": {**klass, "teacherId": ids["lin"], "startsAt": at(7, 16, 30), "endsAt": at(7, 17)}},
    )
    assert busy_class["extensions"]["code"] == "CONFLICT"
    assert busy_class["message"].startswith("该班级在此时间已有课")

    replay.advance("5d6h5m", dt.datetime(2026, 3, 7, 15, 5, tzinfo=SHANGHAI))
    assert update(lin, "lesson", trial["id"], {"status": "HELD"}, "status") == {"status": "HELD"}
    assert gu.data(inquiry, {"id": zhou["id"]})["inquiry"] == {
        "stage": "TRIAL_DONE",
        "lastFollowUpOn": "2026-03-07",
        "owner": {"username": "gu"},
    }
    tasks = gu.data("{ eduTasks { edges { node { title kind dueOn status inquiryId } } } }")
    assert [e["node"] for e in tasks["eduTasks"]["edges"]] == [
        {
            "title": "试听回访：周雨桐",
            "kind": "TRIAL_FOLLOW_UP",
            "dueOn": "2026-03-08",
            "status": "OPEN",
            "inquiryId": zhou["id"],
        }
    ]

    # Followed on Monday 2 March: 7 working days later is Wednesday the 11th. On Tuesday the
    # 10th at 02:00, eight days on but six working days, it stays; on the 11th it goes.
    replay.advance("2d10h55m", dt.datetime(2026, 3, 10, 2, 0, tzinfo=SHANGHAI))
    replay.run_due()
    assert gu.data(inquiry, {"id": quiet["id"]})["inquiry"]["stage"] == "NEW"
    replay.advance("1d", dt.datetime(2026, 3, 11, 2, 0, tzinfo=SHANGHAI))
    replay.run_due()
    assert gu.data(inquiry, {"id": quiet["id"]})["inquiry"] == {
        "stage": "POOL",
        "lastFollowUpOn": "2026-03-02",
        "owner": None,
    }
    assert gu.data(inquiry, {"id": zhou["id"]})["inquiry"]["stage"] == "TRIAL_DONE"
    told = gu.nodes("{ myNotifications { edges { node { title kind } } } }")
    assert told == [{"title": "咨询已退回公海：李先生", "kind": "inquiry_pooled"}]
    # Another consultant claims it from the pool.
    claimed = update(
        gu,
        "inquiry",
        quiet["id"],
        {"stage": "CONTACTED", "ownerId": ids["gu"]},
        "stage lastFollowUpOn",
    )
    assert claimed == {"stage": "CONTACTED", "lastFollowUpOn": "2026-03-11"}

    # The principal's heat map: the inquiry came on Monday at 9, the trial on Saturday at 14.
    demand = client_for("qian").data(
        """query($s: DateTime!, $e: DateTime!) {
             courseDemand(since: $s, until: $e) { courseName weekday hour inquiries trials } }""",
        {"s": at(1, 0), "e": at(10, 0)},
    )["courseDemand"]
    assert demand == [
        {"courseName": "小升初数学思维", "weekday": 1, "hour": 9, "inquiries": 1, "trials": 0},
        {"courseName": "小升初数学思维", "weekday": 6, "hour": 14, "inquiries": 0, "trials": 1},
    ]


def test_the_labour_day_holiday_does_not_count_against_the_consultant(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    org: dict[str, Any],
) -> None:
    gu = client_for("gu")
    replay.set(dt.datetime(2026, 4, 30, 16, 0, tzinfo=SHANGHAI))
    rearm_pool(qiao_client)
    asked = create(gu, "inquiry", {"name": "吴先生", "ownerId": org["id"]["gu"]}, "id")
    # Followed on Thursday 30 April. 1-5 May are the holiday, Saturday 9 May a make-up working
    # day: 7 working days later is Wednesday 13 May, though 12 May is 12 days on.
    inquiry = "query($id: ID!) { inquiry(id: $id) { stage owner { username } } }"
    replay.set(dt.datetime(2026, 5, 12, 2, 0, tzinfo=SHANGHAI))
    replay.run_due()
    assert gu.data(inquiry, asked)["inquiry"] == {"stage": "NEW", "owner": {"username": "gu"}}
    replay.advance("1d", dt.datetime(2026, 5, 13, 2, 0, tzinfo=SHANGHAI))
    replay.run_due()
    assert gu.data(inquiry, asked)["inquiry"] == {"stage": "POOL", "owner": None}


def test_enrolment_hours_prepaid_rules_and_what_teachers_see(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    replay: Replay,
    org: dict[str, Any],
    centre: dict[str, str],
) -> None:
    gu, lin, xu, qian = (client_for(u) for u in ("gu", "lin", "xu", "qian"))
    ids = org["id"]
    replay.set(dt.datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI))
    child = {
        "studentNumber": "QM2026010",
        "name": "周雨桐",
        "birthDate": "2014-09-01",
        "grade": "六年级",
    }
    assert refused(gu, "student", child) == {
        "message": "未满十四周岁的学员须先记录监护人同意（《个人信息保护法》第三十一条）",
        "code": "BAD_USER_INPUT",
        "field": "guardianConsentAt",
        "rule": "minor_needs_guardian_consent",
    }
    consented = {**child, "guardianConsentBy": "周丽（母亲）", "guardianConsentAt": at(9, 9, 50)}
    student = create(gu, "student", consented, "id age")
    assert student["age"] == 11
    create(
        gu,
        "guardian",
        {
            "studentId": student["id"],
            "name": "周丽",
            "relationship": "MOTHER",
            "phone": "13857102468",
        },
    )
    other = create(
        gu, "student", {"studentNumber": "QM2026011", "name": "王子涵", "birthDate": "2010-01-05"}
    )

    signed = create(
        gu,
        "enrollment",
        {
            "studentId": student["id"],
            "courseId": centre["math"],
            "schoolClassId": centre["k.math"],
            "consultantId": ids["gu"],
            "enrolledOn": "2026-03-09",
        },
        "id contractNumber",
    )
    english = create(
        gu,
        "enrollment",
        {"studentId": other["id"], "courseId": centre["eng"], "enrolledOn": "2026-03-09"},
        "id contractNumber",
    )
    # Contracts are numbered by the month they are signed in.
    assert (signed["contractNumber"], english["contractNumber"]) == ("HT2603-0001", "HT2603-0002")
    enrolment, english_enrolment = signed["id"], english["id"]

    # Teachers read their classes' students, and the guardians with their phones masked.
    students = "{ students { totalCount edges { node { name } } } }"
    assert lin.data(students)["students"] == {
        "totalCount": 1,
        "edges": [{"node": {"name": "周雨桐"}}],
    }
    assert xu.data(students)["students"] == {"totalCount": 0, "edges": []}
    assert lin.data("{ guardians { edges { node { name relationship } } } }")["guardians"][
        "edges"
    ] == [{"node": {"name": "周丽", "relationship": "MOTHER"}}]
    assert lin.data("{ guardians { edges { node { phone } } } }")["guardians"]["edges"] == [
        {"node": {"phone": "138****2468"}}
    ]
    (error,) = lin.errors("{ guardians { edges { node { wechat } } } }")
    assert error["extensions"]["code"] == "FORBIDDEN"
    (error,) = lin.errors('{ guardians(filter: {phone: {eq: "13857102468"}}) { totalCount } }')
    assert error["extensions"]["code"] == "FORBIDDEN", "a masked field cannot be searched"

    # Hangzhou's rule: at most 60 hours or three months per purchase, no earlier than a month
    # before the course starts, no renewal while more than 20 hours remain.
    payment = {
        "enrollmentId": enrolment,
        "amount": "1800.00",
        "paidOn": "2026-03-09",
        "coversFrom": "2026-03-09",
        "coversUntil": "2026-06-08",
    }
    assert refused(gu, "feePayment", {**payment, "hours": "80.0"}) == {
        "message": f"{RULE}学科类课程单次预收不超过 60.0 课时，本次 80.0 课时",
        "code": "BAD_USER_INPUT",
        "field": "hours",
        "rule": "杭州市学科类预收费",
    }
    too_long = refused(gu, "feePayment", {**payment, "hours": "12.0", "coversUntil": "2026-06-10"})
    assert (too_long["field"], too_long["message"]) == (
        "coversUntil",
        f"{RULE}学科类课程单次预收不超过 3 个月：自 2026-03-09 起最晚到 2026-06-09，"
        "本次到 2026-06-10",
    )
    early = create(
        gu,
        "enrollment",
        {"studentId": student["id"], "courseId": centre["xsc"], "enrolledOn": "2026-03-09"},
    )
    too_early = refused(
        gu,
        "feePayment",
        {
            "enrollmentId": early["id"],
            "hours": "12.0",
            "amount": "1800.00",
            "paidOn": "2026-03-09",
            "coversFrom": "2026-05-01",
            "coversUntil": "2026-07-31",
        },
    )
    assert (too_early["field"], too_early["message"]) == (
        "paidOn",
        f"{RULE}课程 2026-05-01 开始，最早 2026-04-01 方可收费（开课前 30 天内），"
        "本次收费日 2026-03-09",
    )
    # The refused purchases took no receipt number: the first accepted one is the year's first.
    receipt = create(gu, "feePayment", {**payment, "hours": "12.0"}, "receiptNumber")
    assert receipt == {"receiptNumber": "SJ-2026-000001"}
    fees = {**payment, "enrollmentId": english_enrolment, "hours": "30.0", "amount": "4500.00"}
    create(gu, "feePayment", fees)
    renew_now = refused(gu, "feePayment", {**fees, "hours": "10.0", "amount": "1500.00"})
    assert (renew_now["field"], renew_now["message"]) == (
        "hours",
        f"{RULE}剩余 30.0 课时，须剩余不超过 20.0 课时方可续费",
    )
    # A non-academic course is not bound by the rule.
    py = create(
        gu,
        "enrollment",
        {"studentId": other["id"], "courseId": centre["py"], "enrolledOn": "2026-03-09"},
    )
    create(
        gu,
        "feePayment",
        {"enrollmentId": py["id"], "hours": "96.0", "amount": "14400.00", "paidOn": "2026-03-09"},
    )

    # Five two-hour lessons: present, present, leave, present, present, present.
    balance = """query($id: ID!) { enrollment(id: $id) {
        hoursPurchased hoursUsed hoursRemaining amountPrepaid amountConsumed prepaidBalance } }"""
    marks = ["PRESENT", "PRESENT", "LEAVE", "PRESENT", "PRESENT"]
    remaining = []
    for day, mark in zip(range(10, 15), marks, strict=True):
        replay.set(dt.datetime(2026, 3, day, 20, 0, tzinfo=SHANGHAI))
        lesson = create(
            qiao_client,
            "lesson",
            {
                "schoolClassId": centre["k.math"],
                "courseId": centre["math"],
                "teacherId": ids["lin"],
                "classroomId": centre["a101"],
                "startsAt": at(day, 18),
                "endsAt": at(day, 20),
            },
        )
        create(
            lin,
            "attendance",
            {"lessonId": lesson["id"], "studentId": student["id"], "status": mark},
            "hours fee",
        )
        remaining.append(
            qiao_client.data(balance, {"id": enrolment})["enrollment"]["hoursRemaining"]
        )
    assert remaining == ["10.0", "8.0", "8.0", "6.0", "4.0"]
    assert qiao_client.data(balance, {"id": enrolment})["enrollment"] == {
        "hoursPurchased": "12.0",
        "hoursUsed": "8.0",
        "hoursRemaining": "4.0",
        "amountPrepaid": "1800.00",
        "amountConsumed": "1200.00",
        "prepaidBalance": "600.00",
    }
    renewals = gu.data(
        "{ eduTasks(filter: {kind: {eq: RENEWAL}}) "
        "{ edges { node { title dueOn owner { username } } } } }"
    )
    assert [e["node"] for e in renewals["eduTasks"]["edges"]] == [
        {
            "title": "续费提醒：周雨桐《初三数学冲刺班》剩余 4.0 课时",
            "dueOn": "2026-03-15",
            "owner": {"username": "gu"},
        }
    ]
    # At 4 hours left the renewal is allowed.
    renewal = {**payment, "hours": "20.0", "amount": "3000.00", "paidOn": "2026-03-14"}
    assert create(gu, "feePayment", renewal, "receiptNumber") == {"receiptNumber": "SJ-2026-000004"}
    assert qiao_client.data(balance, {"id": enrolment})["enrollment"]["hoursRemaining"] == "24.0"

    load = qian.data(
        """query($s: DateTime!, $e: DateTime!) {
             teacherLoad(since: $s, until: $e) { teacherName lessons hours } }""",
        {"s": at(9, 0), "e": at(16, 0)},
    )
    assert load["teacherLoad"] == [{"teacherName": "林老师", "lessons": 5, "hours": "10.0"}]
