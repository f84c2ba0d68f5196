"""Commands that make and run a deployment: init, migrate, serve, demo, plugin list.

A deployment is a folder holding qiao.toml, its key file, a systemd unit and
(by default) its SQLite database. ``init`` renders the files from the
deployment scaffold (:mod:`qiao.cli.folder`); everything else a deployment
needs (tables, the first administrator, templates) is made through the same
runtime and commands every other command uses, so a new folder is never in a
state the other commands cannot handle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from qiao.cli import folder
from qiao.cli.identity import ADMIN_ROLE, create_user
from qiao.cli.jobs import background_worker
from qiao.cli.migrating import migrate as migrate_schema
from qiao.cli.migrating import require_current
from qiao.cli.scaffolds import plugin_new
from qiao.cli.state import CliState, pass_state
from qiao.cli.templates import install_template
from qiao.core.app import create_app
from qiao.core.auth.tokens import create_token
from qiao.core.config import CONFIG_ENV, CONFIG_FILE, Config
from qiao.core.errors import ConfigurationError
from qiao.core.pluginmanager import BUILTIN_PLUGINS, available_plugins, create_plugins
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.templates_market.market import Market

DEFAULT_DATABASE = "sqlite:///qiao.db"
DEFAULT_PLUGINS = ("crm",)
ADMIN_USERNAME = "admin"
ADMIN_DISPLAY_NAME = "管理员"


@click.command(short_help="Create a new deployment folder.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--database",
    "database_url",
    default=DEFAULT_DATABASE,
    show_default=True,
    help="Database URL; a relative SQLite path is inside DIRECTORY.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    help="Plugin to enable (repeatable; default: crm).",
)
@click.option(
    "--template",
    "templates",
    multiple=True,
    help="Template of the market to install (repeatable; see 'qiao template list').",
)
@click.option("--demo", is_flag=True, help="Seed demo data and print an API token for admin.")
@click.option(
    "--force", is_flag=True, help="Overwrite an existing qiao.toml (the key file is kept)."
)
def init(
    directory: Path,
    database_url: str,
    plugins: tuple[str, ...],
    templates: tuple[str, ...],
    demo: bool,
    force: bool,
) -> None:
    """Create a deployment in DIRECTORY: qiao.toml, key file, systemd unit, tables, 'admin'."""
    path = directory / CONFIG_FILE
    if path.exists() and not force:
        raise click.ClickException(
            f"{path} exists already; use another folder, or --force to overwrite it"
        )
    enabled = list(plugins or DEFAULT_PLUGINS)
    create_plugins(enabled)  # refuse unknown plugins before anything is written
    market = Market.load()
    for name in templates:
        market.package(name)  # and unknown templates
    made = folder.create(directory, database_url, enabled, force=force)
    try:
        config = Config.load(path)
        _set_up(config)
        for name in templates:
            install_template(config, name)
        if demo:
            _with_runtime(Config.load(path), _seed_and_print_token)
        else:
            click.echo(f"Make an API token with: qiao token create --user {ADMIN_USERNAME}")
    except BaseException:
        folder.remove(made)  # a failed init leaves no half-made deployment behind
        raise
    click.echo(
        f"\nNext: cd {directory} && qiao serve   (or install {folder.UNIT_FILE}: docs/deploy.md)"
    )


def _set_up(config: Config) -> None:
    """Migrate a new deployment's database and add 'admin'."""
    click.echo(f"Deployment: {config.path}")
    click.echo(f"Database:   {_display_url(config.database_url)}")
    _with_runtime(config, _migrate_and_add_admin)


def _with_runtime(config: Config, work: Callable[[Runtime], None]) -> None:
    runtime = Runtime(config)
    try:
        work(runtime)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        url = _display_url(config.database_url)
        raise ConfigurationError(f"cannot use the database {url}: {reason}") from None
    finally:
        runtime.close()


def _migrate_and_add_admin(runtime: Runtime) -> None:
    migrate_schema(runtime)
    if _user_exists(runtime, ADMIN_USERNAME):
        click.echo(f"User '{ADMIN_USERNAME}' exists already; kept.")
    else:
        create_user(runtime, ADMIN_USERNAME, ADMIN_DISPLAY_NAME, None, ADMIN_ROLE)
        click.echo(f"Created the administrator '{ADMIN_USERNAME}'.")


def _seed_and_print_token(runtime: Runtime) -> None:
    _seed_demo(runtime)
    _print_admin_token(runtime)


def _print_admin_token(runtime: Runtime) -> None:
    """A demo is explored through the API at once, so it comes with a token to do it."""
    with runtime.db.write() as conn:
        token = create_token(conn, runtime.current(), ADMIN_USERNAME, name="demo")
    base = f"http://{runtime.config.host}:{runtime.config.port}"
    click.echo(f"\nAPI token for '{ADMIN_USERNAME}' (shown once; keep it secret):")
    click.echo(f"  {token}")
    click.echo("Send it with every request as 'Authorization: Bearer <token>', e.g.")
    click.echo(
        f"  curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
        f"""-d '{{"query": "{{ me {{ username }} }}"}}' {base}/graphql"""
    )


def _display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _user_exists(runtime: Runtime, username: str) -> bool:
    with runtime.db.read() as conn:
        page = runtime.records.list(conn, "user", filter={"username": {"eq": username}}, first=1)
    return bool(page.records)


def _seed_demo(runtime: Runtime) -> None:
    runtime.start()  # demo records go through every plugin's write hooks, which need start-up
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        seeded = runtime.plugins.demo_data(runtime.records, ctx)
    if seeded:
        click.echo(f"Seeded demo data of: {', '.join(seeded)}.")
    else:
        click.echo("No enabled plugin has demo data.")


@click.command()
@pass_state
def demo(state: CliState) -> None:
    """Seed the enabled plugins' demo data (once) into the deployment."""
    runtime = state.runtime()
    require_current(runtime)
    _seed_demo(runtime)


@click.command(short_help="Bring the database schema to the metadata.")
@pass_state
def migrate(state: CliState) -> None:
    """Create the tables, columns and indexes the metadata declares and the database lacks."""
    migrate_schema(state.runtime())


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host of qiao.toml).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [server] port).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes, each with its own runtime.",
)
@click.option(
    "--with-worker/--no-worker",
    "with_worker",
    default=True,
    show_default=True,
    help="Also run an event worker (timers, automations, webhooks) in a thread.",
)
@pass_state
def serve(
    state: CliState, host: str | None, port: int | None, workers: int, with_worker: bool
) -> None:
    """Serve the API (GraphQL at /graphql) and, unless --no-worker, a worker, until interrupted."""
    config = state.config()
    runtime = state.runtime()
    require_current(runtime)
    host = host or config.host
    port = config.port if port is None else port
    base = f"http://{host}:{port}"
    click.echo(f"Qiao serves {base}; GraphiQL at {base}/graphql (Ctrl+C stops)")
    level = "debug" if state.debug else "info"
    with background_worker(config, with_worker):
        if workers == 1:
            uvicorn.run(create_app(runtime), host=host, port=port, log_level=level)
            return
        # Each worker process builds its own runtime, finding the configuration here.
        state.close()
        if config.path is not None:
            os.environ[CONFIG_ENV] = str(config.path)
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=level,
        )


def worker_app() -> Starlette:
    """The app of one ``serve --workers`` process (an ASGI factory for uvicorn)."""
    return create_app(Runtime(Config.load()))


@click.group()
def plugin() -> None:
    """Plugins installed in this environment."""


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


COMMANDS: list[click.Command] = [init, migrate, serve, demo, plugin]
