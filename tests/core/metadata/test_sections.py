"""How the manifest parser finds its sections: the core's by name, a plugin's by entry point."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from qiao.core import calendars
from qiao.core.calendars.declaration import SECTION as CALENDARS
from qiao.core.errors import ConfigurationError, MetadataError
from qiao.core.metadata import sections
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.metadata.sections import CORE_SECTIONS, ENTRY_POINT_GROUP, Section
from qiao.core.metadata.yamltext import parse_yaml


class WarrantyTerm(BaseModel):
    name: str
    months: int


#: A section a plugin outside the core would ship, named by the entry points below.
WARRANTY_TERMS = Section(key="warranty_terms", item=WarrantyTerm)
#: Another plugin's section under the same key.
RIVAL_WARRANTY_TERMS = Section(key="warranty_terms", item=WarrantyTerm)
#: An object that is not a Section, named as if it were one.
NOT_A_SECTION = object()


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """The ``qiao.manifest_sections`` entry points the parser sees; none unless a test adds one."""
    installed: list[EntryPoint] = []

    def fake(*, group: str) -> list[EntryPoint]:
        assert group == ENTRY_POINT_GROUP
        return installed

    monkeypatch.setattr(sections, "entry_points", fake)
    sections.installed.cache_clear()
    yield installed
    sections.installed.cache_clear()


def _parse(data: dict[str, Any]) -> Manifest:
    return parse_manifest(data, "warranty", "warranty.yaml")


def _entry_point(key: str, attribute: str) -> EntryPoint:
    return EntryPoint(key, f"{__name__}:{attribute}", ENTRY_POINT_GROUP)


def test_core_sections_need_no_install_metadata(entry_points: list[EntryPoint]) -> None:
    """A venv installed before a section was added still reads every core section."""
    keys = {section.key for section in sections.installed()}
    assert keys == set(CORE_SECTIONS)
    shipped = Path(calendars.__file__).parent / "cn.yaml"
    manifest = parse_manifest(parse_yaml(shipped.read_text(encoding="utf-8")), "core", "cn.yaml")
    (china,) = manifest.section(CALENDARS)
    assert china.name == "cn"
    assert {year.year for year in china.years} >= {2025}


def test_core_sections_apply_roles_and_calendars_first(entry_points: list[EntryPoint]) -> None:
    ranks = [section.rank for section in sections.installed()]
    assert ranks == sorted(ranks)
    assert {s.key for s in sections.installed() if s.rank == ranks[0]} >= {"roles", "calendars"}


def test_a_plugin_adds_a_section_by_entry_point(entry_points: list[EntryPoint]) -> None:
    entry_points.append(_entry_point("warranty_terms", "WARRANTY_TERMS"))
    manifest = _parse({"entities": [], "warranty_terms": [{"name": "std", "months": 24}]})
    assert manifest.section(WARRANTY_TERMS) == (WarrantyTerm(name="std", months=24),)


def test_an_unknown_section_is_refused_without_its_plugin(entry_points: list[EntryPoint]) -> None:
    with pytest.raises(MetadataError, match="warranty_terms"):
        _parse({"entities": [], "warranty_terms": [{"name": "std", "months": 24}]})


def test_a_plugin_cannot_redeclare_a_core_section(entry_points: list[EntryPoint]) -> None:
    entry_points.append(
        EntryPoint("roles", f"{__name__}:WARRANTY_TERMS", ENTRY_POINT_GROUP),
    )
    with pytest.raises(ConfigurationError, match="not the Section of 'roles'"):
        sections.installed()


def test_a_key_declared_twice_names_both_origins(entry_points: list[EntryPoint]) -> None:
    entry_points.append(_entry_point("warranty_terms", "WARRANTY_TERMS"))
    entry_points.append(_entry_point("warranty_terms", "RIVAL_WARRANTY_TERMS"))
    with pytest.raises(ConfigurationError, match="declared twice: by entry point 'warranty_terms'"):
        sections.installed()


def test_an_entry_point_naming_something_else_is_refused(entry_points: list[EntryPoint]) -> None:
    entry_points.append(_entry_point("warranty_terms", "NOT_A_SECTION"))
    with pytest.raises(ConfigurationError, match="is not the Section of 'warranty_terms'"):
        sections.installed()


def test_an_entry_point_naming_a_core_section_itself_is_no_conflict(
    entry_points: list[EntryPoint],
) -> None:
    """Install metadata from an older release may still name a core section; that is no clash."""
    entry_points.append(EntryPoint("roles", CORE_SECTIONS["roles"], ENTRY_POINT_GROUP))
    assert {section.key for section in sections.installed()} == set(CORE_SECTIONS)
