"""``qiao template``: list, show, install, uninstall and upgrade the market's templates.

A template is a plugin, so installing one into a deployment means enabling it
(and the plugins it depends on) in qiao.toml, creating its tables, and
recording its version under ``[templates]``; the database is changed first
and qiao.toml only once that succeeded, so a failure leaves the deployment as
it was. Running servers load plugins at start, so they are restarted after.
"""

from __future__ import annotations

from dataclasses import replace

import click

from qiao.cli.migrating import migrate
from qiao.cli.progress import progress
from qiao.cli.scaffolds import template_new
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core.config import Config
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.metadata.manifest import load_manifest
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.templates_market import removal
from qiao.templates_market.manifest import TemplateManifest, parse_version
from qiao.templates_market.market import Market
from qiao.templates_market.package import TemplatePackage

RESTART_NOTE = "Restart running 'qiao serve' processes to load the change."


@click.group()
def template() -> None:
    """The template market: vertical CRMs to install into this deployment."""


template.add_command(template_new)


@template.command("list")
@pass_state
def list_templates(state: CliState) -> None:
    """List the market's templates; '*' marks those installed in this deployment."""
    config = state.config()
    installed = SettingsFile.read(config.path).templates if config.path else {}
    listings = Market.load().listings()
    width = max((len(t.name) for t in listings), default=0)
    for t in listings:
        mark = "*" if t.name in installed else ("!" if not t.installed else " ")
        click.echo(f"{mark} {t.name:<{width}}  {t.version:<8}  {t.title.zh_cn} / {t.title.en}")
        click.echo(f"  {'':<{width}}  {'':<8}  {t.summary.zh_cn}")


@template.command("info")
@click.argument("name")
@pass_state
def info(state: CliState, name: str) -> None:
    """Show a template's manifest: entities, dependencies, demo data, roles, automations."""
    package = Market.load().package(name)
    m = package.manifest
    config = state.config()
    recorded = SettingsFile.read(config.path).templates.get(name) if config.path else None
    click.echo(f"{m.name} {m.version}: {m.title.zh_cn} / {m.title.en}")
    click.echo(f"  {m.description.zh_cn}")
    click.echo(f"  {m.description.en}")
    click.echo(f"Installed here: {recorded or 'no'}")
    click.echo(f"Depends on: {', '.join(m.depends) or 'nothing but the core'}")
    click.echo("Entities:")
    for entity in _entities(package):
        label = entity.label
        click.echo(f"  {entity.name:<24} {label.zh_cn or label.en} / {label.en or label.zh_cn}")
    demo = package.demo
    click.echo(f"Demo data: {len(demo.records) if demo else 0} records")
    _declared_for_later(m)


def _entities(package: TemplatePackage) -> list[EntityDef]:
    return [
        e
        for path in package.entity_manifests()
        for e in load_manifest(path, package.manifest.name).entities
    ]


def _declared_for_later(m: TemplateManifest) -> None:
    for role in m.roles:
        rights = ", ".join(f"{entity}:{letters}" for entity, letters in role.rights.items())
        click.echo(f"Role {role.name} ({role.label.text('zh-CN')}): {rights}")
    if m.roles:
        click.echo(
            "  (installed as role records, each letter with scope 'all', when the template is "
            "installed; a role that exists already under the same name is kept as it is)"
        )
    for auto in m.automations:
        click.echo(
            f"Automation {auto.name} ({auto.label.text('zh-CN')}): "
            f"on {auto.when.event} of {auto.when.entity}"
        )
    if m.automations:
        click.echo(
            "  (automations are not applied yet: the automation rules engine does not exist)"
        )


@template.command("install")
@click.argument("name")
@click.option("--demo", is_flag=True, help="Also seed the template's demo data.")
@pass_state
def install(state: CliState, name: str, demo: bool) -> None:
    """Enable template NAME and its dependencies, and create their tables."""
    install_template(state.config(), name, demo=demo)
    click.echo(RESTART_NOTE)


def install_template(config: Config, name: str, *, demo: bool = False) -> None:
    """Install ``name`` into the deployment of ``config``; safe to repeat."""
    settings = _settings(config)
    market = Market.load()
    market.package(name)  # refuse unknown or uninstalled templates first
    new = market.to_enable(name, settings.enabled)
    enabled = [*settings.enabled, *new]
    templates = [p for p in [*new, name] if market.is_template(p)]
    runtime = Runtime(replace(config, plugins=tuple(enabled)))
    try:
        with progress(f"Installing {name}", total=2 if demo else 1) as steps:
            steps.start("Migrating the database schema")
            migrate(runtime)
            steps.done()
            if demo:
                steps.start("Seeding demo data")
                _seed(runtime, market, list(dict.fromkeys(templates)))
                steps.done()
    finally:
        runtime.close()
    for plugin in new:
        click.echo(f"enabled plugin {plugin}")
    for t in dict.fromkeys(templates):
        version = market.package(t).manifest.version
        recorded = settings.templates.get(t)
        if recorded is None:
            settings.record_template(t, version)
            click.echo(f"installed template {t} {version}")
        elif recorded != version:
            click.echo(f"template {t} is at {recorded}; run 'qiao template upgrade {t}'")
        else:
            click.echo(f"template {t} {version} is installed already")
    settings.enabled = enabled
    settings.save()
    _declared_for_later_note(market.package(name).manifest)


def _declared_for_later_note(m: TemplateManifest) -> None:
    if m.roles:
        click.echo(
            f"roles of {m.name}: {', '.join(r.name for r in m.roles)} (role records; one that "
            "existed already under the same name was kept as it is)"
        )
    if m.automations:
        click.echo(
            f"note: {m.name} declares {len(m.automations)} automations; they are not applied: "
            "the automation rules engine does not exist yet"
        )


def _seed(runtime: Runtime, market: Market, templates: list[str]) -> None:
    """Seed each template's demo data in one transaction; data seeded before is kept."""
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        for t in templates:
            package = market.package(t)
            if package.demo is None:
                continue
            if package.demo_present(runtime.records, ctx.connection):
                click.echo(f"demo data of {t} is there already; kept")
                continue
            package.seed_demo(runtime.records, ctx)
            click.echo(f"seeded demo data of {t} ({len(package.demo.records)} records)")


@template.command("uninstall")
@click.argument("name")
@click.option("--drop-data", is_flag=True, help="Delete the template's tables even with records.")
@pass_state
def uninstall(state: CliState, name: str, drop_data: bool) -> None:
    """Drop template NAME's tables and disable it; refuses to drop records unless told."""
    config = state.config()
    settings = _settings(config)
    if name not in settings.enabled and name not in settings.templates:
        raise ConfigurationError(f"template {name!r} is not installed in this deployment")
    market = Market.load()
    package = market.package(name)
    for plugin in settings.enabled:
        if plugin != name and name in market.depends(plugin):
            raise ConfigurationError(
                f"plugin {plugin!r} depends on {name!r}; uninstall or disable it first"
            )
    _refuse_extensions(package)
    runtime = Runtime(replace(config, plugins=tuple(settings.enabled)))
    try:
        with runtime.db.write() as conn:
            registry = runtime.build_registry(conn)
            entities = removal.template_entities(registry, name)
            removal.check_unreferenced(registry, name, entities)
            counts = {t: n for t, n in removal.row_counts(conn, entities).items() if n}
            if counts and not drop_data:
                held = ", ".join(f"{t}: {n}" for t, n in counts.items())
                raise Conflict(
                    f"the tables of {name} hold records ({held}); "
                    "rerun with --drop-data to delete them"
                )
            removal.drop_tables(conn, name, entities)
    finally:
        runtime.close()
    for entity in entities:
        click.echo(f"dropped table {entity.name}")
    settings.enabled = [p for p in settings.enabled if p != name]
    settings.record_template(name, None)
    settings.save()
    click.echo(f"uninstalled template {name}")
    click.echo(RESTART_NOTE)


def _refuse_extensions(package: TemplatePackage) -> None:
    for path in package.entity_manifests():
        if load_manifest(path, package.manifest.name).extends:
            raise ConfigurationError(
                f"template {package.manifest.name!r} adds fields to other entities; "
                "uninstalling such a template is not supported yet"
            )


@template.command("upgrade")
@click.argument("name")
@pass_state
def upgrade(state: CliState, name: str) -> None:
    """Bring template NAME's tables to the version of its installed package."""
    config = state.config()
    settings = _settings(config)
    recorded = settings.templates.get(name)
    if recorded is None:
        raise ConfigurationError(
            f"template {name!r} is not installed in this deployment; "
            f"run 'qiao template install {name}'"
        )
    version = Market.load().package(name).manifest.version
    if parse_version(recorded) == parse_version(version):
        click.echo(f"template {name} is at {version} already")
        return
    if parse_version(recorded) > parse_version(version):
        raise ConfigurationError(
            f"this deployment has {name} {recorded}, newer than the installed package "
            f"({version}); install that version of the package"
        )
    runtime = Runtime(config)
    try:
        migrate(runtime)
    finally:
        runtime.close()
    settings.record_template(name, version)
    settings.save()
    click.echo(f"upgraded template {name} from {recorded} to {version}")
    click.echo(RESTART_NOTE)


def _settings(config: Config) -> SettingsFile:
    """The deployment's file; refused when QIAO_PLUGINS would override what is written."""
    settings = SettingsFile.of(config)
    if tuple(settings.enabled) != config.plugins:
        raise ConfigurationError(
            "QIAO_PLUGINS overrides the plugins of qiao.toml; unset it to change templates"
        )
    return settings


COMMANDS: list[click.Command] = [template]
