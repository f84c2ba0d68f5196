"""qiao template list, info, install, uninstall and upgrade."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from sqlalchemy import create_engine, inspect, text

from qiao.core.config import Config

Run = Callable[..., Result]


def _settings(config: Path) -> dict[str, Any]:
    return tomllib.loads(config.read_text(encoding="utf-8"))


def _tables(config: Path) -> set[str]:
    engine = create_engine(Config.load(config).database_url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_list_and_info_show_the_market(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path), "--template", "clinics")
    config = str(tmp_path / "qiao.toml")
    listed = qiao("--config", config, "template", "list").stdout
    assert "* clinics " in listed
    assert "  law_firms " in listed and "律师事务所 / Law firms" in listed
    info = qiao("--config", config, "template", "info", "law_firms").stdout
    assert "law_firms 0.1.0: 律师事务所 / Law firms" in info
    assert "Depends on: crm" in info
    assert "time_entry" in info and "工时记录 / Time entry" in info
    assert "Role partner (合伙人)" in info
    assert "installed as role records, each letter with scope 'all'" in info
    assert "automations are not applied yet: the automation rules engine does not exist" in info
    missing = qiao("--config", config, "template", "info", "bakery", expect=1)
    assert missing.stderr == "Error: no template 'bakery' in the market; see 'qiao template list'\n"


def test_install_enables_dependencies_first_and_is_idempotent(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path], qiao_database_url: str
) -> None:
    config = make_config(tmp_path / "qiao.toml", qiao_database_url)
    settings = _settings(config)
    settings["plugins"]["enabled"] = []
    config.write_text("# kept comment\n" + __import__("tomli_w").dumps(settings), "utf-8")
    first = qiao("--config", str(config), "template", "install", "law_firms", "--demo").stdout
    assert first.index("enabled plugin crm") < first.index("enabled plugin law_firms")
    assert "created table matter" in first
    assert "seeded demo data of law_firms (9 records)" in first
    written = _settings(config)
    assert written["plugins"]["enabled"] == ["crm", "law_firms"]
    assert written["templates"] == {"law_firms": "0.1.0"}
    assert written["metadata"] == {"check_interval": 0}  # other settings are kept
    assert config.read_text(encoding="utf-8").startswith("# kept comment\n")
    again = qiao("--config", str(config), "template", "install", "law_firms", "--demo").stdout
    assert "The database is up to date." in again
    assert "template law_firms 0.1.0 is installed already" in again
    assert "demo data of law_firms is there already; kept" in again
    assert _settings(config) == written


def _roles(config: Path) -> dict[str, tuple[str, dict[str, Any], str]]:
    engine = create_engine(Config.load(config).database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, title, rights, source FROM role")).all()
    finally:
        engine.dispose()
    return {
        name: (title, rights if isinstance(rights, dict) else json.loads(rights), source)
        for name, title, rights, source in rows
    }


def test_install_makes_the_templates_roles_once_and_keeps_edited_ones(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path], qiao_database_url: str
) -> None:
    config = make_config(tmp_path / "qiao.toml", qiao_database_url)
    qiao("--config", str(config), "migrate")
    out = qiao("--config", str(config), "template", "install", "education").stdout
    assert "roles of education: course_advisor, teacher (role records;" in out
    assert "1 automations; they are not applied" in out
    roles = _roles(config)
    title, rights, source = roles["course_advisor"]
    assert (title, source) == ("课程顾问 / Course advisor", "education")
    assert rights == {
        "entities": {
            "student": {"read": "all", "create": "all", "update": "all"},
            "enrollment": {"read": "all", "create": "all", "update": "all"},
            "course": {"read": "all"},
        }
    }
    assert roles["teacher"][1]["entities"]["enrollment"] == {"read": "all", "update": "all"}
    # An administrator narrows the role; installing again (and migrating) keeps the edit.
    narrowed = {"entities": {"student": {"read": "own"}}}
    engine = create_engine(Config.load(config).database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE role SET rights = :rights WHERE name = 'course_advisor'"),
                {"rights": json.dumps(narrowed)},
            )
    finally:
        engine.dispose()
    qiao("--config", str(config), "template", "install", "education")
    qiao("--config", str(config), "migrate")
    again = _roles(config)
    assert again["course_advisor"][1] == narrowed
    assert set(again) == set(roles)


def test_every_templates_roles_are_valid_kernel_roles() -> None:
    from qiao.templates_market.market import Market

    market = Market.load()
    for name in ("manufacturing_dealers", "education", "clinics", "law_firms"):
        package = market.package(name)
        manifest = package.roles_manifest()
        assert manifest is not None, name
        assert [r.name for r in manifest.roles] == [r.name for r in package.manifest.roles]
        assert manifest in package.manifests()
        entities = {e.name for e in _entities_of(package)} | _CRM_ENTITIES
        for role in manifest.roles:
            assert set(role.rights.entities) <= entities, (name, role.name)


_CRM_ENTITIES = {"account", "contact", "lead", "opportunity", "product", "activity"}


def _entities_of(package: Any) -> list[Any]:
    from qiao.core.metadata.manifest import load_manifest

    return [e for p in package.entity_manifests() for e in load_manifest(p, "x").entities]


def test_uninstall_refuses_to_drop_records_unless_told(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path], qiao_database_url: str
) -> None:
    config = make_config(tmp_path / "qiao.toml", qiao_database_url)
    run = lambda *args, expect=0: qiao("--config", str(config), *args, expect=expect)  # noqa: E731
    run("template", "install", "education", "--demo")
    refused = run("template", "uninstall", "education", expect=1)
    assert refused.stderr == (
        "Error: the tables of education hold records (enrollment: 3, course: 3, student: 3); "
        "rerun with --drop-data to delete them\n"
    )
    assert {"course", "student", "enrollment"} <= _tables(config)
    dropped = run("template", "uninstall", "education", "--drop-data").stdout
    assert "dropped table enrollment" in dropped
    assert not {"course", "student", "enrollment"} & _tables(config)
    assert "account" in _tables(config)
    written = _settings(config)
    assert written["plugins"]["enabled"] == ["crm"]
    assert "templates" not in written
    assert "The deployment is healthy." in run("doctor").stdout
    again = run("template", "uninstall", "education", expect=1)
    assert "template 'education' is not installed in this deployment" in again.stderr


def test_uninstall_without_records_needs_no_flag(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path), "--template", "clinics")
    config = str(tmp_path / "qiao.toml")
    result = qiao("--config", config, "template", "uninstall", "clinics").stdout
    assert "dropped table appointment" in result and "dropped table patient" in result


def test_uninstall_refuses_a_plugin_that_is_not_a_template(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path), "--template", "education")
    result = qiao("--config", str(tmp_path / "qiao.toml"), "template", "uninstall", "crm", expect=1)
    assert result.stderr == "Error: plugin 'crm' is not a template (no template.yaml)\n"


def test_upgrade_migrates_and_records_the_new_version(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path), "--template", "education")
    config = tmp_path / "qiao.toml"
    assert (
        "at 0.1.0 already"
        in qiao("--config", str(config), "template", "upgrade", "education").stdout
    )
    # An older version without enrollments: its table is missing and its version recorded.
    engine = create_engine(Config.load(config).database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE enrollment"))
    engine.dispose()
    text_ = config.read_text(encoding="utf-8").replace('education = "0.1.0"', 'education = "0.0.9"')
    config.write_text(text_, encoding="utf-8")
    doctor = qiao("--config", str(config), "doctor", expect=1).stdout
    assert "run 'qiao template upgrade education'" in doctor
    upgraded = qiao("--config", str(config), "template", "upgrade", "education").stdout
    assert "created table enrollment" in upgraded
    assert "upgraded template education from 0.0.9 to 0.1.0" in upgraded
    assert _settings(config)["templates"] == {"education": "0.1.0"}
    newer = config.read_text(encoding="utf-8").replace('"0.1.0"', '"0.2.0"')
    config.write_text(newer, encoding="utf-8")
    refused = qiao("--config", str(config), "template", "upgrade", "education", expect=1)
    assert "newer than the installed package (0.1.0)" in refused.stderr


def test_commands_that_change_templates_need_a_deployment_file(
    qiao: Run, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    result = qiao("template", "install", "clinics", expect=1)
    assert result.stderr.startswith("Error: no qiao.toml here;")
