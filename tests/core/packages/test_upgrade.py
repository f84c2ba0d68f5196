"""A template's life in one database: install, an administrator's edits, upgrade, dry runs.

Version 1.0.0 of a small ``workshop`` template is installed; version 1.1.0
renames a field, renames its picklist values, adds a field filled from a
formula, changes a role and a rule and drops another rule. The upgrade must
move the data, follow the template where nobody changed its records, keep what
an administrator changed, and stop, changing nothing, where both changed the
same record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import inspect

from qiao.core.config import Config
from qiao.core.errors import Conflict
from qiao.core.market.package import TemplatePackage
from qiao.core.packages import versions
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime

LABEL = {"en": "x", "zh-CN": "x"}


def _machine(grade_field: str, values: list[str], extra: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "machine",
        "plural": "machines",
        "label": {"en": "Machine", "zh-CN": "设备"},
        "fields": [
            {"name": "name", "type": "string", "required": True, "label": {"en": "Name"}},
            {"name": "serial", "type": "string", "label": {"en": "Serial"}},
            {
                "name": grade_field,
                "type": "enum",
                "label": {"en": "Grade"},
                "values": [{"value": v} for v in values],
            },
            *extra,
        ],
    }


def _rule(name: str, condition: str) -> dict[str, Any]:
    return {
        "name": name,
        "entity": "machine",
        "trigger": {"created": {}},
        "condition": condition,
        "actions": [{"set": {"serial": "checked"}}],
    }


V1 = {
    "entities": [_machine("grade", ["A", "B", "C"], [])],
    "roles": [
        {
            "name": "workshop_lead",
            "title": "车间主任",
            "rights": {"entities": {"machine": {"read": "all"}}},
        },
        {
            "name": "workshop_viewer",
            "title": "查看",
            "rights": {"entities": {"machine": {"read": "own"}}},
        },
    ],
    "automation_rules": [_rule("rule_kept", 'name = "A"'), _rule("rule_dropped", 'name = "B"')],
}
V2 = {
    "entities": [
        _machine(
            "tier",
            ["GOLD", "SILVER", "BRONZE"],
            [{"name": "label", "type": "string", "label": {"en": "Label"}}],
        )
    ],
    "roles": [
        {
            "name": "workshop_lead",
            "title": "车间主任",
            "rights": {"entities": {"machine": {"read": "all", "update": "all"}}},
        },
        V1["roles"][1],
    ],
    "automation_rules": [_rule("rule_kept", 'name = "AA"')],
    "migrations": [
        {
            "version": "1.1.0",
            "steps": [
                {"rename_field": {"entity": "machine", "from": "grade", "to": "tier"}},
                {
                    "map_values": {
                        "entity": "machine",
                        "field": "tier",
                        "values": {"A": "GOLD", "B": "SILVER"},
                    }
                },
                {
                    "backfill": {
                        "entity": "machine",
                        "field": "label",
                        "formula": 'CONCAT(name, "-", serial)',
                    }
                },
            ],
        }
    ],
}


def _package(folder: Path, version: str, content: dict[str, Any]) -> TemplatePackage:
    folder.mkdir(parents=True)
    template = {
        "name": "workshop",
        "version": version,
        "qiao": ">=0.1",
        "title": LABEL,
        "description": LABEL,
        "depends": ["crm"],
        "manifests": ["content.yaml"],
    }
    (folder / "template.yaml").write_text(yaml.safe_dump(template), encoding="utf-8")
    (folder / "content.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), "utf-8")
    return TemplatePackage.load(folder)


@pytest.fixture
def at(qiao_config: Config, tmp_path: Path) -> Iterator[Callable[[str], Runtime]]:
    """``at("1.0.0")`` or ``at("1.1.0")``: a runtime with that version of the template."""
    packages = {
        "1.0.0": _package(tmp_path / "v1", "1.0.0", V1),
        "1.1.0": _package(tmp_path / "v2", "1.1.0", V2),
    }
    made: list[Runtime] = []

    def runtime(version: str) -> Runtime:
        made.append(Runtime(qiao_config, extra_plugins=[packages[version]]))
        return made[-1]

    yield runtime
    for runtime_ in made:
        runtime_.close()


def _records(runtime: Runtime, entity: str) -> dict[str, Record]:
    with runtime.db.read() as conn:
        page = runtime.records.list(conn, entity, first=500, actor=Actor.system())
    return {r.get("name") or r["id"]: r for r in page.records}


def _update(runtime: Runtime, entity: str, name: str, **values: Any) -> None:
    record = _records(runtime, entity)[name]
    with runtime.records.transaction(Actor.system(), Source.GRAPHQL) as ctx:
        runtime.records.update(ctx, entity, record["id"], values)


@pytest.fixture
def installed(at: Callable[[str], Runtime]) -> Runtime:
    """Version 1.0.0 installed, with three machines."""
    runtime = at("1.0.0")
    runtime.migrate()
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        for name, serial, grade in (("车床", "S1", "A"), ("铣床", "S2", "B"), ("钻床", None, "C")):
            runtime.records.create(ctx, "machine", {"name": name, "serial": serial, "grade": grade})
    return runtime


def test_an_upgrade_moves_the_data_and_follows_the_template(
    installed: Runtime, at: Callable[[str], Runtime]
) -> None:
    _update(installed, "role", "workshop_viewer", title="只读查看")  # v2 leaves this role as it was
    upgraded = at("1.1.0")
    plan = upgraded.migrate().plan.render()
    assert "migrated renamed machine.grade to tier" in plan
    assert "migrated 2 values of machine.tier" in plan
    assert "migrated machine.label filled on 3 records" in plan
    assert "changed role 'workshop_lead' (from workshop)" in plan
    assert "changed automation_rule 'rule_kept' (from workshop)" in plan
    assert "dropped automation_rule 'rule_dropped' (no longer in workshop)" in plan
    assert "migrated workshop from 1.0.0 to 1.1.0" in plan
    machines = _records(upgraded, "machine")
    assert {n: (m["tier"], m["label"]) for n, m in machines.items()} == {
        "车床": ("GOLD", "车床-S1"),
        "铣床": ("SILVER", "铣床-S2"),
        "钻床": ("C", "钻床-"),  # a value the migration does not map; no serial (empty)
    }
    roles = _records(upgraded, "role")
    assert roles["workshop_lead"]["rights"]["entities"]["machine"] == {
        "read": "all",
        "update": "all",
    }
    assert roles["workshop_viewer"]["title"] == "只读查看"
    rules = _records(upgraded, "automation_rule")
    assert set(rules) == {"rule_kept"} and rules["rule_kept"]["condition"] == 'name = "AA"'
    with upgraded.db.read() as conn:
        assert versions.recorded(conn)["workshop"] == "1.1.0"
    assert upgraded.migrate().plan.empty, "a second run has nothing left to do"


def test_a_record_both_changed_stops_the_upgrade_and_changes_nothing(
    installed: Runtime, at: Callable[[str], Runtime]
) -> None:
    _update(installed, "role", "workshop_lead", title="主任（本厂）")
    upgraded = at("1.1.0")
    with pytest.raises(Conflict) as stopped:
        upgraded.migrate()
    assert "role 'workshop_lead'" in stopped.value.message
    with upgraded.db.read() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("machine")}
        assert versions.recorded(conn)["workshop"] == "1.0.0"
    assert "grade" in columns and "tier" not in columns
    assert _records(installed, "role")["workshop_lead"]["title"] == "主任（本厂）"


def test_a_dropped_record_an_administrator_changed_is_kept(
    installed: Runtime, at: Callable[[str], Runtime]
) -> None:
    _update(installed, "automation_rule", "rule_dropped", condition='name = "BB"')
    plan = at("1.1.0").migrate().plan.render()
    assert "kept automation_rule 'rule_dropped': an administrator changed it" in plan
    assert _records(installed, "automation_rule")["rule_dropped"]["condition"] == 'name = "BB"'


def test_a_record_an_administrator_deleted_stays_deleted(
    installed: Runtime, at: Callable[[str], Runtime]
) -> None:
    kept = _records(installed, "automation_rule")["rule_kept"]
    with installed.records.transaction(Actor.system(), Source.GRAPHQL) as ctx:
        installed.records.delete(ctx, "automation_rule", kept["id"])
    plan = at("1.1.0").migrate().plan.render()
    assert "kept automation_rule 'rule_kept': an administrator deleted it" in plan
    assert "rule_kept" not in _records(installed, "automation_rule")


def test_a_dry_run_prints_the_plan_of_the_real_run_and_changes_nothing(
    installed: Runtime, at: Callable[[str], Runtime]
) -> None:
    dry = at("1.1.0").migrate(dry_run=True)
    assert dry.dry_run
    with installed.db.read() as conn:
        assert "tier" not in {c["name"] for c in inspect(conn).get_columns("machine")}
        assert versions.recorded(conn)["workshop"] == "1.0.0"
    assert set(_records(installed, "automation_rule")) == {"rule_kept", "rule_dropped"}
    real = at("1.1.0").migrate()
    assert dry.plan.lines == real.plan.lines
    assert dry.plan.render(done=False)[0].startswith("would ")
