"""The four vertical templates: manifests, index, entities and demo data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from qiao.core.errors import Conflict, MetadataError
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.templates_market.manifest import load_template_manifest
from qiao.templates_market.market import Market, load_index

VERTICALS = ("manufacturing_dealers", "education", "clinics", "law_firms")
ENTITIES = {
    "manufacturing_dealers": {"dealer_tier", "rebate_agreement", "purchase_line", "dealer_quarter"},
    "education": {"course", "student", "enrollment"},
    "clinics": {"patient", "appointment"},
    "law_firms": {"matter", "client_engagement", "time_entry"},
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
    market = Market.load()
    records = qiao_runtime.records
    for name in VERTICALS:
        package = market.package(name)
        with records.transaction(Actor.system(), Source.CLI) as ctx:
            package.seed_demo(records, ctx)
        with qiao_runtime.db.read() as conn:
            assert package.demo_present(records, conn)
        with (
            pytest.raises(Conflict, match="there already"),
            records.transaction(Actor.system(), Source.CLI) as ctx,
        ):
            package.seed_demo(records, ctx)
    with qiao_runtime.db.read() as conn:
        hours = records.list(conn, "time_entry", first=10, with_total=True)
        lines = records.list(conn, "purchase_line", first=10, with_total=True)
    assert hours.total_count == 3
    assert {str(r["amount"]) for r in lines.records} == {"143664.00", "60680.00", "69379.20"}


def test_a_manifest_error_names_the_file_and_the_item(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "name: x\nversion: '1.0'\ntitle: {en: X, zh-CN: X}\ndescription: {en: X, zh-CN: X}\n"
        "roles: [{name: r, label: {en: R}, rights: {account: rwx}}]\n",
        encoding="utf-8",
    )
    with pytest.raises(MetadataError) as raised:
        load_template_manifest(tmp_path)
    message = raised.value.message
    assert "version '1.0' must be MAJOR.MINOR.PATCH" in message
    assert "roles.0 (r).rights" in message and "letters of 'crud'" in message


def test_a_manifest_naming_a_missing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "name: x\nversion: 1.0.0\ntitle: {en: X, zh-CN: X}\ndescription: {en: X, zh-CN: X}\n"
        "entities: [entities.yaml]\n",
        encoding="utf-8",
    )
    with pytest.raises(MetadataError, match=r"names 'entities\.yaml', which is not in"):
        load_template_manifest(tmp_path)
