"""``qiao template`` and ``qiao plugin`` as a user runs them: subprocesses on a deployment
made by ``qiao init`` (its key file, its audit key), on SQLite and PostgreSQL.

Each of the four templates goes through its life: a dry run that changes nothing, an install
with demo data, an administrator's customisations, an upgrade that keeps them, and an
uninstall that refuses to lose records until told to purge them, after a backup.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from qiao.core.config import Config
from qiao.core.market.index import Market
from qiao.core.permissions.roles import SECTION as ROLES
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.deployment import Deployment
from qiao.core.testing.deployment import init as init_deployment

VERTICALS = ("manufacturing_dealers", "education", "clinics", "law_firms")


def _sql(deployment: Deployment, query: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(Config.load(deployment.config).database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _tables(deployment: Deployment) -> set[str]:
    engine = create_engine(Config.load(deployment.config).database_url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", VERTICALS)
def test_a_template_is_installed_customised_upgraded_and_uninstalled(
    qiao_deployment: Deployment, name: str
) -> None:
    site = qiao_deployment
    package = Market.load().package(name)
    entities = [e.name for manifest in package.manifests for e in manifest.entities]
    roles = [r.name for manifest in package.manifests for r in manifest.section(ROLES)]

    planned = site.run("template", "install", name, "--demo", "--dry-run").stdout
    assert f"would create table {entities[0]}" in planned
    assert f"would create role {roles[0]!r} (from {name})" in planned
    assert not set(entities) & _tables(site), "a dry run changes nothing"
    assert name not in site.config.read_text(encoding="utf-8")

    installed = site.run("template", "install", name, "--demo").stdout
    assert f"created table {entities[0]}" in installed
    assert f"created {len(package.demo.records)} demo records (from {name})" in installed  # type: ignore[union-attr]
    assert f"installed template {name} {package.version}" in installed
    assert set(entities) <= _tables(site)
    again = site.run("template", "install", name).stdout
    assert "The database is up to date." in again, "installing again changes nothing"

    # An administrator narrows a role and adds a field of their own to a template entity.
    _sql(site, "UPDATE role SET title = :t WHERE name = :n", t="本厂定制", n=roles[0])
    site.run("field", "add", entities[0], "--name", "site_note", "--type", "string",
             "--label-zh", "现场备注", "--label-en", "Site note")  # fmt: skip

    # The database holds an older version: upgrading brings it to the package's.
    _sql(site, "UPDATE qiao_package SET version = '0.0.9' WHERE name = :n", n=name)
    assert "run 'qiao template upgrade" in site.run("doctor", expect=1).stdout
    upgraded = site.run("template", "upgrade", name).stdout
    assert f"migrated {name} from 0.0.9 to {package.version}" in upgraded
    assert f"upgraded template {name} from 0.0.9 to {package.version}" in upgraded
    assert _sql(site, "SELECT title FROM role WHERE name = :n", n=roles[0]) == [("本厂定制",)]
    assert "site_note" in {c["name"] for c in _columns(site, entities[0])}

    refused = site.run("template", "uninstall", name, expect=1).stderr
    assert refused.startswith(f"Error: the tables of {name} hold records (")
    assert "rerun with --purge" in refused
    planned = site.run("template", "uninstall", name, "--purge", "--dry-run").stdout
    assert f"would drop table {entities[0]} (" in planned
    assert set(entities) <= _tables(site)
    purging = site.run("template", "uninstall", name, "--purge")
    assert purging.stderr == "", "no step of the purge leaves a rule naming a role it dropped"
    purged = purging.stdout
    backup = Path(purged.split("backed up the database to ")[1].split(" before purging")[0])
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and backup.stat().st_size > 0
    assert f"dropped role {roles[0]!r}" in purged
    assert not set(entities) & _tables(site)
    assert name not in site.config.read_text(encoding="utf-8")
    assert _sql(site, "SELECT name FROM role WHERE name = :n", n=roles[0]) == []
    assert "The deployment is healthy." in site.run("doctor").stdout


def _columns(deployment: Deployment, table: str) -> list[dict[str, object]]:
    engine = create_engine(Config.load(deployment.config).database_url)
    try:
        with engine.connect() as conn:
            return list(inspect(conn).get_columns(table))
    finally:
        engine.dispose()


def test_init_with_several_templates_installs_them_all_in_one_go(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init_deployment(
        tmp_path / "site", qiao_empty_database_url, "--template", "clinics",
        "--template", "law_firms", "--demo",
    )  # fmt: skip
    enabled = Config.load(site.config).plugins
    assert enabled == ("crm", "clinics", "law_firms")
    assert {"patient", "matter"} <= _tables(site)
    counts = _sql(site, "SELECT count(*) FROM matter")
    assert counts[0][0] > 0


def test_a_failed_install_leaves_nothing_behind(qiao_deployment: Deployment) -> None:
    site = qiao_deployment
    # An account holding the credit code of the law firm's first demo client: seeding the
    # demo meets the unique code, and the whole install rolls back with it.
    runtime = Runtime(Config.load(site.config))
    try:
        with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
            runtime.records.create(
                ctx,
                "account",
                {"name": "云帆（旧档）", "unified_credit_code": "91440300MA5FQ8RX2K"},
            )
    finally:
        runtime.close()
    before = _tables(site)
    failed = site.run("template", "install", "law_firms", "--demo", expect=1)
    assert failed.stderr.startswith("Error: law_firms demo data, record 1 (account): ")
    assert _tables(site) == before
    assert _sql(site, "SELECT name FROM role WHERE name = 'partner'") == []
    assert "law_firms" not in site.config.read_text(encoding="utf-8")


def test_plugin_enable_and_disable_edit_the_deployment(qiao_deployment: Deployment) -> None:
    site = qiao_deployment
    hint = site.run("import", "leads.xlsx", expect=2).stderr
    assert "enable the leads plugin: qiao plugin enable leads" in hint
    enabled = site.run("plugin", "enable", "leads").stdout
    assert "created table lead_channel" in enabled and "enabled plugin leads" in enabled
    assert "leads" in Config.load(site.config).plugins
    assert "Import FILE" in site.run("import", "--help").stdout
    refused = site.run("plugin", "disable", "crm", expect=1).stderr
    assert "plugin 'leads' depends on 'crm'; disable it first" in refused
    site.run("plugin", "disable", "leads")
    assert "leads" not in Config.load(site.config).plugins
    assert "lead_channel" in _tables(site), "disabling keeps the plugin's tables"
    site.run("plugin", "enable", "leads")
    assert "lead_channel" in _tables(site)


def test_the_market_lists_and_describes_templates(qiao_deployment: Deployment) -> None:
    site = qiao_deployment
    site.run("template", "install", "clinics")
    listed = site.run("template", "list").stdout
    assert "* clinics " in listed
    assert "  law_firms " in listed and "律师事务所 / Law firms" in listed
    info = site.run("template", "info", "law_firms").stdout
    assert "law_firms 0.2.0: 律师事务所 / Law firms" in info
    assert "Supports Qiao: >=0.1" in info
    assert "Depends on: crm" in info
    assert "time_entry" in info and "工时记录 / Time entry" in info
    assert "Role partner (合伙人 / Partner): matter:read=filter/create=all" in info
    missing = site.run("template", "info", "bakery", expect=1)
    assert missing.stderr == "Error: no template 'bakery' in the market; see 'qiao template list'\n"


def test_commands_that_change_templates_need_a_deployment_file(tmp_path: Path) -> None:
    result = Deployment(tmp_path).run("template", "install", "clinics", expect=1)
    assert result.stderr.startswith("Error: no qiao.toml here;")


def test_purging_a_template_initialised_with_its_demo_takes_its_approvals_along(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    """``qiao init --template manufacturing_dealers --demo`` seeds the CRM demo too, whose
    quote 15 % below list price waits on the template's process ``quote_discount``. The
    purge takes the request with the process, and the relation the template added to
    ``account`` (a table constraint on a table ``init`` created), after the backup, and the
    template's demo records in the tables that stay, so that it installs again with its
    demo."""
    site = init_deployment(
        tmp_path / "site", qiao_empty_database_url, "--template", "manufacturing_dealers", "--demo"
    )
    waiting = (
        "SELECT q.name, r.status FROM approval_request r JOIN approval_process p "
        "ON p.id = r.process_id JOIN quote q ON CAST(q.id AS VARCHAR(36)) = r.record_id "
        "WHERE p.name = 'quote_discount'"
    )
    (pending,) = _sql(site, waiting)
    assert pending[1] == "PENDING"
    purged = site.run("template", "uninstall", "manufacturing_dealers", "--purge").stdout
    backup = Path(purged.split("backed up the database to ")[1].split(" before purging")[0])
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and backup.stat().st_size > 0
    assert "dropped 1 approval requests of 'quote_discount'" in purged
    assert "dropped column account.grading_policy_id" in purged
    assert _sql(site, "SELECT count(*) FROM approval_request") == [(0,)]
    assert _sql(site, "SELECT count(*) FROM approval_process") == [(0,)]
    # The CRM's quote stays: only what the template brought goes.
    assert _sql(site, "SELECT count(*) FROM quote WHERE name = :n", n=pending[0]) == [(1,)]
    assert "grading_policy_id" not in {c["name"] for c in _columns(site, "account")}
    assert not {"dealer_quarter", "mould_trial", "grading_policy"} & _tables(site)
    assert "manufacturing_dealers" not in site.config.read_text(encoding="utf-8")
    # The demo's own teams, people, accounts and products go too; the CRM demo's stay.
    assert "dropped 34 demo records in other plugins' tables" in purged
    assert _sql(site, "SELECT count(*) FROM team WHERE code LIKE 'HR-%'") == [(0,)]
    assert _sql(site, "SELECT count(*) FROM team WHERE code = 'EAST'") == [(1,)]
    # Accounts are written as before, now that nothing points at the dropped tables.
    _sql(site, "UPDATE account SET industry = '模具'")
    assert "The deployment is healthy." in site.run("doctor").stdout
    # So the template comes back with its demo.
    again = site.run("template", "install", "manufacturing_dealers", "--demo").stdout
    assert "installed template manufacturing_dealers 0.5.0" in again
