"""The ``qiao`` command: the entry point, shared options and error handling.

Commands live in modules by subject (deployment, identity, schema, metadata),
named here and imported when one of their commands runs or help lists them, so
a command loads only what it needs (``qiao doctor`` neither the web server nor
the scaffolding templates); plugins add theirs through ``qiao_cli_commands``.
Every failure a person can act on prints one line on stderr and exits 1; an
unexpected one does the same with a pointer to ``--debug``, which shows the
traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, StatementError

from qiao.cli.state import CliState
from qiao.core.collector import tune_for_service
from qiao.core.config import Config
from qiao.core.errors import ConfigurationError, QiaoError
from qiao.core.market.index import Market
from qiao.core.pluginmanager import BUILTIN_PLUGINS, available_plugins, create_plugins
from qiao.core.redaction import install_log_scrubber

log = logging.getLogger("qiao.cli")

#: Qiao's own commands, by name, and the module of ``qiao.cli`` whose ``COMMANDS`` hold each.
BUILTIN_COMMANDS: dict[str, str] = {
    "init": "deployment",
    "migrate": "deployment",
    "serve": "deployment",
    "demo": "deployment",
    "user": "identity",
    "token": "identity",
    "schema": "schema",
    "entity": "metadata",
    "field": "metadata",
    "metadata": "metadata",
    "numbering": "numbering",
    "audit": "audit",
    "template": "templates",
    "plugin": "plugins",
    "doctor": "doctor",
    "worker": "jobs",
    "jobs": "jobs",
    "webhook": "jobs",
    "keys": "keys",
    "backup": "backup",
    "privacy": "privacy",
    "calendar": "calendars",
    "clock": "clock",
    "export": "exports",
}


class QiaoGroup(click.Group):
    """A click group that turns errors into one line, imports its own commands when
    first asked for them and adds plugins' commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in BUILTIN_COMMANDS:
            module = importlib.import_module(f"qiao.cli.{BUILTIN_COMMANDS[cmd_name]}")
            for command in module.COMMANDS:
                self.commands.setdefault(command.name or "", command)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """A command of a plugin the deployment does not enable says how to enable it."""
        name = args[0] if args else ""
        if name and self.get_command(ctx, name) is None:
            owner = _disabled_owner(ctx, name)
            if owner is not None:
                ctx.fail(
                    f"{name!r} is a command of the {owner} plugin, which this deployment "
                    f"does not enable: enable the {owner} plugin: qiao plugin enable {owner}"
                )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except QiaoError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(exc.message) from None
        except OperationalError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(f"the database cannot be used: {_reason(exc)}") from None
        except Exception as exc:
            if _debug(ctx):
                raise
            log.debug("unexpected error", exc_info=True)
            raise click.ClickException(
                f"internal error ({exc.__class__.__name__}: {_reason(exc)}); "
                "rerun with --debug for details"
            ) from None


def _reason(exc: Exception) -> str:
    """The first line of what went wrong; for a failed statement, the database's own
    words, without the statement and its values (record content, often many lines)."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else cause.__class__.__name__


def _debug(ctx: click.Context) -> bool:
    state = ctx.find_object(CliState)
    return bool(state and state.debug)


@click.group(cls=QiaoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    envvar="QIAO_CONFIG",
    help="The deployment's qiao.toml (default: ./qiao.toml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="qiao-crm", prog_name="qiao")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Qiao (桥): a self-hosted CRM framework.

    Run commands inside a deployment folder (made by 'qiao init'), or name its
    qiao.toml with --config or QIAO_CONFIG.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    install_log_scrubber()  # no log line of any command holds a decrypted value or a secret
    ctx.obj = CliState(config_path=config_path, debug=debug)
    ctx.call_on_close(ctx.obj.close)


def _add_plugin_commands(argv: Sequence[str]) -> None:
    """Register the enabled plugins' commands; a broken setup is reported when used."""
    try:
        config = Config.load(_config_arg(argv))
        plugins = create_plugins(config.plugins)
    except QiaoError:
        return
    for plugin, command in plugins.cli_commands():
        if cli.commands.get(command.name or "") is command:
            continue  # added by an earlier call in this process
        if command.name in cli.commands or command.name in BUILTIN_COMMANDS:
            raise ConfigurationError(
                f"plugin {plugin!r} adds the command {command.name!r}, which exists already"
            )
        cli.add_command(command)


def _disabled_owner(ctx: click.Context, command: str) -> str | None:
    """The installed plugin offering ``command``, among those the deployment does not enable."""
    state = ctx.find_object(CliState)
    try:
        enabled = {*BUILTIN_PLUGINS, *(state.config().plugins if state else ())}
    except QiaoError:
        enabled = set(BUILTIN_PLUGINS)
    market = Market.load()
    for name in sorted(available_plugins().keys() - enabled):
        try:
            offered = create_plugins(market.to_enable(name, [])).cli_commands()
        except QiaoError:
            continue  # a plugin that cannot load offers nothing to enable
        if any(c.name == command for plugin, c in offered if plugin == name):
            return name
    return None


def _config_arg(argv: Sequence[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``qiao``)."""
    tune_for_service()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _add_plugin_commands(args)
    except QiaoError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    cli.main(args=args, prog_name="qiao")
