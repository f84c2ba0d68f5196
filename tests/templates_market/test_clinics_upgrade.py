"""A clinic on an older version of the template, with its records, upgraded to the current one.

0.1.0 (kept beside this test, as it shipped) stored phones and allergies in plain text, booked
appointments at ``scheduled_at`` with a duration, and named statuses BOOKED and COMPLETED. The
upgrade must keep every patient and appointment, move the data to the new fields and values,
and leave the personal data encrypted and still found by phone. 0.2.0's follow-up plans had no
calendar: the upgrade gives them China's national one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text

import qiao.templates_market.clinics as clinics
from qiao.core.encryption.rotation import rotate_data
from qiao.core.records.context import Actor, Source
from tests.templates_market.conftest import TemplateVersions

OLD = Path(__file__).with_name("clinics_0_1_0")
NEW = Path(clinics.__file__).parent


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ()


def test_an_old_clinic_keeps_its_records_and_gets_them_encrypted(
    qiao_backend: str, template_versions: TemplateVersions
) -> None:
    template_versions.install(OLD)
    new, plan = template_versions.upgrade(NEW)
    assert "migrated clinics from 0.1.0 to 0.3.0" in plan
    widened = "changed column patient.phone to TEXT, for its sealed values"
    assert (widened in plan) == (qiao_backend == "postgresql"), "SQLite does not bound text"
    # As docs/encryption.md says for fields that became encrypted: qiao keys rotate --data.
    rotate_data(new.records.encryption, new.current())
    records = new.records
    with new.db.read() as conn:
        found = records.list(
            conn, "patient", filter={"phone": {"eq": "136 8801 2345"}}, actor=Actor.system()
        ).records
        appointments = records.list(
            conn, "appointment", order_by=[{"field": "starts_at"}], actor=Actor.system()
        ).records
        stored = conn.execute(text("SELECT phone, allergies FROM patient")).all()
    assert [(p["name"], p["allergies"]) for p in found] == [("刘晓梅", "青霉素过敏")]
    assert all(v is None or v.startswith("sm4g:") for row in stored for v in row)
    assert [(a["status"], a["starts_at"].isoformat(), a["ends_at"]) for a in appointments] == [
        ("CLOSED", "2026-04-08T01:30:00+00:00", None),
        ("SCHEDULED", "2026-04-09T06:00:00+00:00", None),
        ("SCHEDULED", "2026-04-10T02:15:00+00:00", None),
    ]
    # The records of 0.1 keep their numbers; the next patient is given the first new one.
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        added = records.create(ctx, "patient", {"name": "赵敏"})
    assert added["record_number"] == "BL00000001"


def test_plans_of_0_2_follow_the_national_calendar(
    template_versions: TemplateVersions,
) -> None:
    runtime = template_versions.install(NEW)
    # As 0.2.0 left it: the plans hold no calendar.
    with runtime.db.write() as conn:
        conn.execute(text("UPDATE followup_template SET calendar = NULL"))
        conn.execute(text("UPDATE qiao_package SET version = '0.2.0' WHERE name = 'clinics'"))
    plan = runtime.migrate().plan.render()
    assert f"migrated clinics from 0.2.0 to {clinics.QIAO_VERSION}" in plan
    with runtime.db.read() as conn:
        calendars = conn.execute(text("SELECT name, calendar FROM followup_template")).all()
    assert sorted(tuple(row) for row in calendars) == [
        ("急性上呼吸道感染随访", "cn"),
        ("拔牙术后随访", "cn"),
    ]
