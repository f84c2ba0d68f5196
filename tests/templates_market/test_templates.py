"""The four vertical templates: manifests, index, entities and demo data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from qiao.core.errors import ConfigurationError, Conflict, MetadataError
from qiao.core.market.index import Market, load_index
from qiao.core.market.manifest import load_template_manifest, qiao_version
from qiao.core.market.package import TemplatePackage
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

VERTICALS = ("manufacturing_dealers", "education", "clinics", "law_firms")
ENTITIES = {
    "manufacturing_dealers": {
        "dealer_tier",
        "rebate_agreement",
        "purchase_line",
        "dealer_quarter",
        "rebate_program",
        "erp_sales_line",
        "grading_policy",
        "dealer_grade_change",
        "sales_agreement",
        "agreement_line",
        "device",
        "service_ticket",
        "maintenance_plan",
        "mould_trial",
        "follow_up_task",
        "playbook_step",
        "customer_signal",
        "campaign",
        "invoice_milestone",
    },
    "education": {
        "course",
        "classroom",
        "school_class",
        "student",
        "guardian",
        "inquiry",
        "lesson",
        "enrollment",
        "fee_payment",
        "attendance",
        "prepaid_rule",
        "edu_task",
    },
    "clinics": {
        "patient",
        "patient_guardian",
        "marketing_profile",
        "appointment",
        "visit",
        "followup_template",
        "followup_task",
    },
    "law_firms": {
        "matter",
        "matter_member",
        "matter_party",
        "conflict_check",
        "conflict_hit",
        "conflict_waiver",
        "deadline",
        "counselling_session",
        "client_engagement",
        "time_entry",
        "billing_statement",
    },
}


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", *VERTICALS)


def test_the_index_lists_each_vertical_as_its_manifest_says() -> None:
    market = Market.load()
    index = {e.name: e for e in load_index().templates}
    assert set(index) == set(VERTICALS)
    for name in VERTICALS:
        manifest = market.package(name).manifest
        assert manifest.name == name
        assert index[name].version == manifest.version
        assert index[name].title == manifest.title


def test_every_template_declares_its_vertical_entities(qiao_runtime: Runtime) -> None:
    entities = qiao_runtime.current().registry.entities
    for name, expected in ENTITIES.items():
        assert {e.name for e in entities.values() if e.source == name} == expected


def test_demo_data_seeds_once_per_template(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    plan = qiao_runtime.migrate(demo_of=VERTICALS).plan
    assert [line for line in plan.render() if "demo records" in line] == [
        f"created {len(Market.load().package(name).demo.records)} demo records (from {name})"  # type: ignore[union-attr]
        for name in VERTICALS
    ]
    for name in VERTICALS:
        with pytest.raises(Conflict, match="there already"):
            qiao_runtime.migrate(demo_of=[name])
    with qiao_runtime.db.read() as conn:
        hours = records.list(conn, "time_entry", first=10, with_total=True, actor=Actor.system())
        lines = records.list(conn, "purchase_line", first=10, with_total=True, actor=Actor.system())
    assert hours.total_count == 3
    assert lines.total_count == 40  # a quarter of a dealer network's shipments and one return


def test_each_template_ships_its_roles_as_role_records(qiao_runtime: Runtime) -> None:
    with qiao_runtime.db.read() as conn:
        roles = {
            r["name"]: r
            for r in qiao_runtime.records.list(
                conn, "role", first=100, actor=Actor.system()
            ).records
        }
    assert roles["partner"]["source"] == "law_firms"
    assert roles["partner"]["rights"]["entities"]["matter"]["create"] == "all"
    assert roles["front_desk"]["source"] == "clinics"


def _write_template(folder: Path, text: str) -> None:
    head = "name: x\ntitle: {en: X, zh-CN: X}\ndescription: {en: X, zh-CN: X}\n"
    (folder / "template.yaml").write_text(head + text, encoding="utf-8")


def test_a_manifest_error_names_the_file_and_the_item(tmp_path: Path) -> None:
    _write_template(tmp_path, "version: '1.0'\nautomations: []\n")
    with pytest.raises(MetadataError) as raised:
        load_template_manifest(tmp_path)
    message = raised.value.message
    assert str(tmp_path / "template.yaml") in message
    assert "version '1.0' must be MAJOR.MINOR.PATCH" in message
    assert "automations" in message


def test_a_manifest_naming_a_missing_file_is_refused(tmp_path: Path) -> None:
    _write_template(tmp_path, "version: 1.0.0\nmanifests: [entities.yaml]\n")
    with pytest.raises(MetadataError, match=r"names 'entities\.yaml', which is not in"):
        load_template_manifest(tmp_path)


def test_a_template_for_another_qiao_is_refused_naming_both_versions(tmp_path: Path) -> None:
    _write_template(tmp_path, "version: 1.0.0\nqiao: '>=99'\n")
    with pytest.raises(ConfigurationError) as raised:
        TemplatePackage.load(tmp_path)
    assert raised.value.message == (
        f"template x 1.0.0 supports Qiao >=99; this is Qiao {qiao_version()}"
    )
    _write_template(tmp_path, "version: 1.0.0\nqiao: 'soon'\n")
    with pytest.raises(MetadataError, match="'soon' is not a version specifier"):
        load_template_manifest(tmp_path)
