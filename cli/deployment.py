"""Commands that make and run a deployment: init, migrate, serve, demo, plugin list.

A deployment is a folder holding qiao.toml (and, by default, its SQLite
database). ``init`` writes the file directly rather than through a scaffold:
it has four settings, and everything else a deployment needs (tables, the
first administrator) is made through the same runtime every other command
uses, so a new folder is never in a state the other commands cannot handle.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import tomli_w
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from qiao.cli.identity import ADMIN_ROLE, create_user
from qiao.cli.state import CliState, pass_state
from qiao.core.app import create_app
from qiao.core.auth.tokens import create_token
from qiao.core.config import CONFIG_ENV, CONFIG_FILE, Config
from qiao.core.errors import ConfigurationError
from qiao.core.pluginmanager import BUILTIN_PLUGINS, available_plugins, create_plugins
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import ddl

DEFAULT_DATABASE = "sqlite:///qiao.db"
DEFAULT_PLUGINS = ("crm",)
ADMIN_USERNAME = "admin"
ADMIN_DISPLAY_NAME = "管理员"
CONFIG_HEADER = (
    "# Qiao deployment settings (docs/cli.md). Environment variables override them:\n"
    "# QIAO_DATABASE_URL, QIAO_PLUGINS, QIAO_HOST, QIAO_PORT.\n\n"
)


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
@click.option("--demo", is_flag=True, help="Seed demo data and print an API token for admin.")
@click.option("--force", is_flag=True, help="Overwrite an existing qiao.toml.")
def init(
    directory: Path, database_url: str, plugins: tuple[str, ...], demo: bool, force: bool
) -> None:
    """Create a deployment in DIRECTORY: qiao.toml, tables and the user 'admin'."""
    path = directory / CONFIG_FILE
    if path.exists() and not force:
        raise click.ClickException(
            f"{path} exists already; use another folder, or --force to overwrite it"
        )
    enabled = list(plugins or DEFAULT_PLUGINS)
    create_plugins(enabled)  # refuse unknown plugins before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "database": {"url": database_url},
        "plugins": {"enabled": enabled},
        "server": {"host": Config.host, "port": Config.port},
    }
    existed = path.exists()
    path.write_text(CONFIG_HEADER + tomli_w.dumps(settings), encoding="utf-8")
    try:
        _set_up(Config.load(path), demo)
    except BaseException:
        if not existed:
            path.unlink()  # a failed init leaves no half-made deployment behind
        raise
    click.echo(f"\nNext: cd {directory} && qiao serve")


def _set_up(config: Config, demo: bool) -> None:
    """Migrate a new deployment's database, add 'admin' and, if asked, the demo data."""
    runtime = Runtime(config)
    try:
        click.echo(f"Deployment: {config.path}")
        click.echo(f"Database:   {_display_url(config.database_url)}")
        _migrate(runtime)
        if _user_exists(runtime, ADMIN_USERNAME):
            click.echo(f"User '{ADMIN_USERNAME}' exists already; kept.")
        else:
            create_user(runtime, ADMIN_USERNAME, ADMIN_DISPLAY_NAME, None, ADMIN_ROLE)
            click.echo(f"Created the administrator '{ADMIN_USERNAME}'.")
        if demo:
            _seed_demo(runtime)
            _print_admin_token(runtime)
        else:
            click.echo(f"Make an API token with: qiao token create --user {ADMIN_USERNAME}")
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        url = _display_url(config.database_url)
        raise ConfigurationError(f"cannot use the database {url}: {reason}") from None
    finally:
        runtime.close()


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
    _require_current(runtime)
    _seed_demo(runtime)


@click.command(short_help="Bring the database schema to the metadata.")
@pass_state
def migrate(state: CliState) -> None:
    """Create the tables, columns and indexes the metadata declares and the database lacks."""
    _migrate(state.runtime())


def _migrate(runtime: Runtime) -> None:
    """Migrate and say what was done, one line per table, column and index."""
    with runtime.db.read() as conn:
        kernel_before = ddl.kernel_revision(conn)
    plan = runtime.migrate()
    head = ddl.kernel_head()
    if kernel_before != head:
        click.echo(f"kernel tables: at revision {head}")
    for table in plan.create_tables:
        click.echo(f"created table {table}")
    for table, column in plan.add_columns:
        click.echo(f"added column {table}.{column}")
    for table, index in plan.add_indexes:
        if table not in plan.create_tables:
            click.echo(f"created index {index} on {table}")
    if plan.empty and kernel_before == head:
        click.echo("The database is up to date.")
    for table, column in plan.orphan_columns:
        click.echo(f"note: column {table}.{column} is not declared by any field (kept)")


def _require_current(runtime: Runtime) -> None:
    kernel_current, plan = runtime.pending()
    if not kernel_current or plan is None or not plan.empty:
        raise ConfigurationError("the database is behind the metadata; run 'qiao migrate' first")


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
@pass_state
def serve(state: CliState, host: str | None, port: int | None, workers: int) -> None:
    """Serve the API (GraphQL at /graphql) until interrupted."""
    config = state.config()
    runtime = state.runtime()
    _require_current(runtime)
    host = host or config.host
    port = config.port if port is None else port
    base = f"http://{host}:{port}"
    click.echo(f"Qiao serves {base}; GraphiQL at {base}/graphql (Ctrl+C stops)")
    level = "debug" if state.debug else "info"
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
