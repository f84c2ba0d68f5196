"""The education template's behaviour beyond the S8 story (tests/scenarios/test_s8_education.py):
course matching's word cutting, month arithmetic of the prepaid rules, the ``*`` rule, and
teachers' shares following a student from class to class."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.templates_market.education.matching import best_courses, words
from qiao.templates_market.education.prepaid import add_months


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "education")


def test_chinese_is_cut_into_bigrams_and_latin_into_words() -> None:
    assert words("小升初数学") == {"小升", "升初", "初数", "数学"}
    assert words("少儿 Python 编程") == {"少儿", "python", "编程"}
    assert words("学，画") == {"学", "画"}


def test_whole_keywords_outweigh_shared_words() -> None:
    courses = [
        {"code": "B", "name": "数学思维", "keywords": "思维"},
        {"code": "A", "name": "小升初冲刺", "keywords": "小升初, 冲刺"},
        {"code": "C", "name": "美术", "keywords": "绘画"},
    ]
    ranked = [(m.course["code"], m.score, m.keywords) for m in best_courses("小升初数学", courses)]
    assert ranked == [("A", 5, ("小升初",)), ("B", 1, ())]


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (dt.date(2026, 3, 9), 3, dt.date(2026, 6, 9)),
        (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
        (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
    ],
)
def test_months_end_on_the_same_day_or_the_months_last(
    start: dt.date, months: int, end: dt.date
) -> None:
    assert add_months(start, months) == end


@pytest.fixture
def school(qiao_runtime: Runtime, qiao_server: LiveServer) -> Iterator[dict[str, Any]]:
    """Two teachers with a class each, a course in a city without a rule of its own."""
    records = qiao_runtime.records
    with records.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }
    made: dict[str, Any] = {"client": {}}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for name in ("lin", "xu"):
            user = records.create(ctx, "user", {"username": name, "display_name": name})
            records.create(ctx, "role_assignment", {"user": user["id"], "role": roles["teacher"]})
            made[name] = user["id"]
            token = create_token(ctx.connection, qiao_runtime.current(), name)
            made["client"][name] = GraphQLClient(qiao_server.url, token)
        course = records.create(
            ctx,
            "course",
            {
                "code": "SZ-1",
                "name": "初一数学",
                "subject": "MATH",
                "city": "苏州",
                "hour_price": "100.00",
            },
        )
        made["course"] = course["id"]
        for name in ("lin", "xu"):
            made[f"class.{name}"] = records.create(
                ctx,
                "school_class",
                {"name": f"{name}班", "course": course["id"], "teacher": made[name]},
            )["id"]
        records.create(
            ctx,
            "prepaid_rule",
            {"name": "默认", "city": "*", "max_hours": "60.0", "max_months": 3},
        )
        made["student"] = records.create(
            ctx, "student", {"student_number": "S1", "name": "陈思远", "birth_date": "2010-01-01"}
        )["id"]
    yield made
    for client in made["client"].values():
        client.close()


def test_the_star_rule_applies_where_a_city_has_none(
    qiao_client: GraphQLClient, school: dict[str, Any]
) -> None:
    enrolment = qiao_client.data(
        "mutation($i: EnrollmentCreateInput!) { createEnrollment(input: $i) { id } }",
        {
            "i": {
                "studentId": school["student"],
                "courseId": school["course"],
                "enrolledOn": "2026-03-09",
            }
        },
    )["createEnrollment"]["id"]
    (error,) = qiao_client.errors(
        "mutation($i: FeePaymentCreateInput!) { createFeePayment(input: $i) { id } }",
        {
            "i": {
                "enrollmentId": enrolment,
                "hours": "61.0",
                "amount": "6100.00",
                "paidOn": "2026-03-09",
                "coversFrom": "2026-03-09",
                "coversUntil": "2026-05-09",
            }
        },
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "hours", "rule": "默认"}


def test_a_teacher_reads_a_student_while_the_student_is_in_their_class(
    qiao_client: GraphQLClient, school: dict[str, Any]
) -> None:
    lin, xu = school["client"]["lin"], school["client"]["xu"]
    students = "{ students { totalCount } }"
    enrolment = qiao_client.data(
        "mutation($i: EnrollmentCreateInput!) { createEnrollment(input: $i) { id } }",
        {
            "i": {
                "studentId": school["student"],
                "courseId": school["course"],
                "schoolClassId": school["class.lin"],
                "enrolledOn": "2026-03-09",
            }
        },
    )["createEnrollment"]["id"]
    counts = (
        lin.data(students)["students"]["totalCount"],
        xu.data(students)["students"]["totalCount"],
    )
    assert counts == (1, 0)
    move = (
        "mutation($id: ID!, $i: EnrollmentUpdateInput!) "
        "{ updateEnrollment(id: $id, input: $i) { id } }"
    )
    qiao_client.data(move, {"id": enrolment, "i": {"schoolClassId": school["class.xu"]}})
    counts = (
        lin.data(students)["students"]["totalCount"],
        xu.data(students)["students"]["totalCount"],
    )
    assert counts == (0, 1)
    qiao_client.data(move, {"id": enrolment, "i": {"status": "WITHDRAWN"}})
    assert xu.data(students)["students"]["totalCount"] == 0
    (error,) = qiao_client.errors(
        "mutation($i: AttendanceCreateInput!) { createAttendance(input: $i) { id } }",
        {
            "i": {
                "lessonId": _lesson(qiao_client, school),
                "studentId": school["student"],
                "status": "PRESENT",
            }
        },
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "student"}


def _lesson(client: GraphQLClient, school: dict[str, Any]) -> str:
    lesson = client.data(
        "mutation($i: LessonCreateInput!) { createLesson(input: $i) { id } }",
        {
            "i": {
                "courseId": school["course"],
                "teacherId": school["xu"],
                "startsAt": "2026-03-10T18:00:00+08:00",
                "endsAt": "2026-03-10T20:00:00+08:00",
            }
        },
    )
    return str(lesson["createLesson"]["id"])
