"""A centre on version 0.1.0 of the education template, with its records, upgraded to the
current one: students, courses and enrolments stay, the new balances read zero until fees
and attendance are recorded, and the 0.1 role ``course_advisor`` gives way to the new roles."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

import qiao.templates_market.education as education
from qiao.core.records.context import Actor
from tests.templates_market.conftest import TemplateVersions

OLD = Path(__file__).with_name("education_0_1_0")
NEW = Path(education.__file__).parent


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm",)


def test_an_old_centre_keeps_its_records(template_versions: TemplateVersions) -> None:
    template_versions.install(OLD)
    new, plan = template_versions.upgrade(NEW)
    assert "migrated education from 0.1.0 to 0.3.0" in plan
    assert "dropped role 'course_advisor' (no longer in education)" in plan
    with new.db.read() as conn:
        system = Actor.system()
        students = new.records.list(conn, "student", actor=system).records
        enrolments = new.records.list(conn, "enrollment", actor=system).records
        roles = {r["name"] for r in new.records.list(conn, "role", first=100, actor=system).records}
    assert sorted(s["name"] for s in students) == ["周雨桐", "王子涵", "陈思远"]
    assert {(e["status"], e["hours_remaining"], e["prepaid_balance"]) for e in enrolments} == {
        ("ATTENDING", Decimal("0.0"), Decimal("0.00")),
        ("ENROLLED", Decimal("0.0"), Decimal("0.00")),
    }
    assert {
        "course_consultant",
        "academic_affairs",
        "teacher",
        "school_finance",
        "principal",
    } <= roles
