"""``qiao plugin``: list the installed plugins, enable and disable them, make a new one.

Enabling a plugin edits the deployment's qiao.toml and migrates the database
for it (tables, declared records) in one transaction, with the plugins it
depends on; the file is written only once the database took the change.
Disabling takes it off the list and keeps its tables and records, so enabling
it again brings them back as they were.
"""

from __future__ import annotations

from dataclasses import replace

import click

from qiao.cli.migrating import migrate
from qiao.cli.scaffolds import plugin_new
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core.errors import ConfigurationError
from qiao.core.market.index import Market
from qiao.core.pluginmanager import BUILTIN_PLUGINS, available_plugins
from qiao.core.runtime import Runtime

RESTART_NOTE = "Restart running 'qiao serve' processes to load the change."


@click.group()
def plugin() -> None:
    """Plugins installed in this environment, and those the deployment enables."""


plugin.add_command(plugin_new)


@plugin.command("list")
@pass_state
def list_plugins(state: CliState) -> None:
    """List installed plugins; '*' marks those the deployment enables."""
    enabled = {*BUILTIN_PLUGINS, *state.config().plugins}
    installed = available_plugins()
    width = max(map(len, [*installed, *enabled]), default=0)
    for name in sorted(installed):
        mark = "*" if name in enabled else " "
        note = " (built in)" if name in BUILTIN_PLUGINS else ""
        click.echo(f"{mark} {name:<{width}}  {installed[name].value}{note}")
    for name in sorted(enabled - installed.keys()):
        click.echo(f"! {name:<{width}}  enabled but not installed")


@plugin.command("enable")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_state
def enable(state: CliState, name: str, dry_run: bool) -> None:
    """Enable plugin NAME and the plugins it depends on, and migrate the database for them."""
    config = state.config()
    settings = SettingsFile.to_change(config)
    if name not in available_plugins():
        raise ConfigurationError(f"no plugin {name!r} is installed; see 'qiao plugin list'")
    if name in BUILTIN_PLUGINS or name in settings.enabled:
        click.echo(f"plugin {name} is enabled already")
        return
    new = Market.load().to_enable(name, settings.enabled)
    enabled = [*settings.enabled, *new]
    runtime = Runtime(replace(config, plugins=tuple(enabled)))
    try:
        migrate(runtime, dry_run=dry_run)
    finally:
        runtime.close()
    if dry_run:
        return
    settings.enabled = enabled
    settings.save()
    for plugin_name in new:
        click.echo(f"enabled plugin {plugin_name}")
    click.echo(RESTART_NOTE)


@plugin.command("disable")
@click.argument("name")
@pass_state
def disable(state: CliState, name: str) -> None:
    """Disable plugin NAME; its tables and records are kept."""
    settings = SettingsFile.to_change(state.config())
    if name in BUILTIN_PLUGINS:
        raise ConfigurationError(f"plugin {name!r} is built in and always enabled")
    if name not in settings.enabled:
        raise ConfigurationError(f"plugin {name!r} is not enabled in this deployment")
    market = Market.load()
    for other in settings.enabled:
        if other != name and name in market.depends(other):
            raise ConfigurationError(f"plugin {other!r} depends on {name!r}; disable it first")
    settings.enabled = [p for p in settings.enabled if p != name]
    settings.save()
    click.echo(f"disabled plugin {name}; its tables and records are kept")
    click.echo(RESTART_NOTE)


COMMANDS: list[click.Command] = [plugin]
