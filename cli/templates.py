"""``qiao template``: list, show, install, upgrade and uninstall the market's templates.

A template is a plugin, so installing one means enabling it (and the plugins
it depends on) and migrating: its tables, declared records (roles, rules,
pipelines, approval processes) and, if asked, its demo data, in one
transaction. The database is changed first and qiao.toml only once that
succeeded, so a failure leaves the deployment as it was. ``--dry-run`` does
the same work in a transaction it rolls back, and prints the plan. Running
servers load plugins at start, so they are restarted after.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path

import click
from sqlalchemy import inspect

from qiao.cli.migrating import migrate
from qiao.cli.scaffolds import template_new
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core.config import Config
from qiao.core.encryption import backup as backups
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.market import removal
from qiao.core.market.index import Market
from qiao.core.market.manifest import parse_version
from qiao.core.market.package import TemplatePackage
from qiao.core.packages import versions
from qiao.core.permissions.roles import SECTION as ROLES
from qiao.core.runtime import Runtime

RESTART_NOTE = "Restart running 'qiao serve' processes to load the change."


@click.group()
def template() -> None:
    """The template market: vertical CRMs to install into this deployment."""


template.add_command(template_new)


@template.command("list")
@pass_state
def list_templates(state: CliState) -> None:
    """List the market's templates; '*' marks those enabled in this deployment."""
    config = state.config()
    enabled = set(SettingsFile.read(config.path).enabled) if config.path else set()
    listings = Market.load().listings()
    width = max((len(t.name) for t in listings), default=0)
    for t in listings:
        mark = "*" if t.name in enabled else ("!" if not t.installed else " ")
        click.echo(f"{mark} {t.name:<{width}}  {t.version:<8}  {t.title.zh_cn} / {t.title.en}")
        click.echo(f"  {'':<{width}}  {'':<8}  {t.summary.zh_cn}")


@template.command("info")
@click.argument("name")
@pass_state
def info(state: CliState, name: str) -> None:
    """Show a template: entities, roles, rules, pipelines, approvals, demo data, migrations."""
    package = Market.load().package(name)
    m = package.manifest
    click.echo(f"{m.name} {m.version}: {m.title.zh_cn} / {m.title.en}")
    click.echo(f"  {m.description.zh_cn}")
    click.echo(f"  {m.description.en}")
    click.echo(f"Supports Qiao: {m.qiao or 'any version'}")
    click.echo(f"Installed here: {_installed_version(state.config(), name) or 'no'}")
    click.echo(f"Depends on: {', '.join(m.depends) or 'nothing but the core'}")
    _describe_content(package)


def _describe_content(package: TemplatePackage) -> None:
    manifests = package.manifests
    click.echo("Entities:")
    for entity in (e for manifest in manifests for e in manifest.entities):
        label = entity.label
        click.echo(f"  {entity.name:<24} {label.zh_cn or label.en} / {label.en or label.zh_cn}")
    for manifest in manifests:
        for role in manifest.section(ROLES):
            rights = role.rights.entities
            scopes = ", ".join(
                f"{entity}:{'/'.join(f'{r}={_scope(getattr(er, r))}' for r in _granted(er))}"
                for entity, er in rights.items()
            )
            click.echo(f"Role {role.name} ({role.title or role.name}): {scopes}")
        for entity, values in manifest.declared_records():
            if entity != "role":
                click.echo(f"{entity.replace('_', ' ').capitalize()} {values['name']}")
        for migration in manifest.migrations:
            click.echo(f"Migration to {migration.version}: {len(migration.steps)} steps")
    demo = package.demo
    click.echo(f"Demo data: {len(demo.records) if demo else 0} records")


def _granted(rights: object) -> list[str]:
    rights_names = ("read", "create", "update", "delete", "export")
    return [r for r in rights_names if _scope(getattr(rights, r)) != "none"]


def _scope(value: object) -> str:
    return "filter" if hasattr(value, "filter") else str(getattr(value, "value", value))


@template.command("install")
@click.argument("name")
@click.option("--demo", is_flag=True, help="Also seed the template's demo data.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_state
def install(state: CliState, name: str, demo: bool, dry_run: bool) -> None:
    """Enable template NAME and its dependencies, and bring their content into the database."""
    install_template(state.config(), name, demo=demo, dry_run=dry_run)
    if not dry_run:
        click.echo(RESTART_NOTE)


def install_template(
    config: Config, name: str, *, demo: bool = False, dry_run: bool = False
) -> None:
    """Install ``name`` into the deployment of ``config``; safe to repeat."""
    settings = SettingsFile.to_change(config)
    market = Market.load()
    package = market.package(name)  # refuse unknown, unsupported or uninstalled templates first
    new = market.to_enable(name, settings.enabled)
    enabled = [*settings.enabled, *new]
    demo_of = [p for p in [*new, name] if market.is_template(p)] if demo else []
    runtime = Runtime(replace(config, plugins=tuple(enabled)))
    try:
        migrate(runtime, demo_of=demo_of, dry_run=dry_run)
    finally:
        runtime.close()
    if dry_run:
        return
    for plugin in new:
        click.echo(f"enabled plugin {plugin}")
    click.echo(f"installed template {name} {package.version}")
    settings.enabled = enabled
    settings.save()


@template.command("upgrade")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_state
def upgrade(state: CliState, name: str, dry_run: bool) -> None:
    """Bring template NAME's content to the version of its installed package.

    Tables gain what the new version adds, data moves as its migrations say,
    and its declared records follow it unless an administrator changed them:
    then the upgrade stops, naming each conflict, and nothing is changed.
    """
    config = state.config()
    settings = SettingsFile.to_change(config)
    if name not in settings.enabled:
        raise ConfigurationError(
            f"template {name!r} is not installed in this deployment; "
            f"run 'qiao template install {name}'"
        )
    package = Market.load().package(name)
    recorded = _installed_version(config, name)
    if recorded is not None and parse_version(recorded) > package.manifest.version_tuple:
        raise ConfigurationError(
            f"this deployment has {name} {recorded}, newer than the installed package "
            f"({package.version}); install that version of the package"
        )
    if recorded == package.version:
        click.echo(f"template {name} is at {package.version} already")
    runtime = Runtime(config)
    try:
        migrate(runtime, dry_run=dry_run)
    finally:
        runtime.close()
    if not dry_run and recorded != package.version:
        click.echo(f"upgraded template {name} from {recorded or 'unknown'} to {package.version}")
        click.echo(RESTART_NOTE)


@template.command("uninstall")
@click.argument("name")
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete the template's records (an encrypted backup is written first).",
)
@click.option(
    "--backup",
    "backup_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --purge writes its backup (default: backups/ in the deployment folder).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_state
def uninstall(
    state: CliState, name: str, purge: bool, backup_file: Path | None, dry_run: bool
) -> None:
    """Drop template NAME's tables and records it declared, and disable it.

    Refused while its tables hold records, unless --purge.
    """
    config = state.config()
    settings = SettingsFile.to_change(config)
    if name not in settings.enabled:
        raise ConfigurationError(f"template {name!r} is not installed in this deployment")
    market = Market.load()
    market.package(name)
    for plugin in settings.enabled:
        if plugin != name and name in market.depends(plugin):
            raise ConfigurationError(
                f"plugin {plugin!r} depends on {name!r}; uninstall or disable it first"
            )
    runtime = Runtime(config)
    try:
        counts = _held_records(runtime, name)
        if counts and not purge:
            held = ", ".join(f"{t}: {n}" for t, n in counts.items())
            raise Conflict(
                f"the tables of {name} hold records ({held}); rerun with --purge to delete "
                "them (an encrypted backup of the database is written first)"
            )
        if counts and not dry_run:
            written = _backup(runtime, config, name, backup_file)
            click.echo(f"backed up the database to {written} before purging")
        plan = removal.uninstall(runtime, name, dry_run=dry_run)
    finally:
        runtime.close()
    for line in plan.render(done=not dry_run):
        click.echo(line)
    if dry_run:
        return
    settings.enabled = [p for p in settings.enabled if p != name]
    settings.save()
    click.echo(f"uninstalled template {name}")
    click.echo(RESTART_NOTE)


def _held_records(runtime: Runtime, name: str) -> dict[str, int]:
    """Records the uninstall would delete: its tables' and those about them (approvals of its
    processes, documents of its records ...), so that none goes without --purge and a backup."""
    with runtime.db.read() as conn:
        registry = runtime.build_registry(conn)
        entities = removal.template_entities(registry, name)
        held = {t: n for t, n in removal.row_counts(conn, entities).items() if n}
        return held | removal.records_about(conn, registry, name)


def _backup(runtime: Runtime, config: Config, name: str, chosen: Path | None) -> Path:
    """An encrypted backup of the whole database, 0600, never overwriting a file."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = chosen or config.root / "backups" / f"before-uninstall-{name}-{stamp}.qiaobak"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    provider = backups.provider_or_error(runtime.records.encryption.keys.provider)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists; name another backup file") from None
    try:
        with os.fdopen(fd, "wb") as out:
            backups.create(runtime.db.engine, provider, out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _installed_version(config: Config, name: str) -> str | None:
    """The version of ``name`` the database holds, if the deployment has a database yet."""
    if config.path is None:
        return None
    runtime = Runtime(config)
    try:
        with runtime.db.read() as conn:
            if versions.package.name not in inspect(conn).get_table_names():
                return None  # a database not migrated yet
            return versions.recorded(conn).get(name)
    finally:
        runtime.close()


COMMANDS: list[click.Command] = [template]
