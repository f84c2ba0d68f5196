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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from qiao.cli import folder
from qiao.cli.identity import ADMIN_ROLE, create_user
from qiao.cli.jobs import background_worker
from qiao.cli.migrating import migrate as migrate_schema
from qiao.cli.migrating import require_current
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core.auth.tokens import create_token
from qiao.core.collector import tune_for_service
from qiao.core.config import CONFIG_ENV, CONFIG_FILE, Config
from qiao.core.errors import ConfigurationError
from qiao.core.market.index import Market
from qiao.core.market.manifest import TemplateManifest
from qiao.core.pluginmanager import BUILTIN_PLUGINS, create_plugins
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

DEFAULT_DATABASE = "sqlite:///qiao.db"
#: Seconds a ``serve --workers`` process may take to answer its supervisor's health check.
#: A new process imports Qiao before it can answer; on a busy machine that takes longer
#: than uvicorn's 5 s, and the supervisor would kill and restart it forever.
WORKER_HEALTHCHECK_SECONDS = 60
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
    market = Market.load()
    enabled = list(plugins or DEFAULT_PLUGINS)
    for name in templates:
        market.package(name)  # refuse unknown templates before anything is written
        enabled += market.to_enable(name, enabled)
    create_plugins(enabled)  # refuse unknown plugins before anything is written
    made = folder.create(directory, database_url, enabled, force=force)
    try:
        _encrypt_template_fields(path, [market.package(n).manifest for n in templates])
        config = Config.load(path)
        click.echo(f"Deployment: {config.path}")
        click.echo(f"Database:   {_display_url(config.database_url)}")
        demo_of = [*BUILTIN_PLUGINS, *enabled] if demo else []
        _with_runtime(config, lambda runtime: _set_up(runtime, demo_of))
        for name in templates:
            click.echo(f"installed template {name} {market.package(name).manifest.version}")
        if demo:
            _with_runtime(config, _print_admin_token)
        else:
            click.echo(f"Make an API token with: qiao token create --user {ADMIN_USERNAME}")
    except BaseException:
        folder.remove(made)  # a failed init leaves no half-made deployment behind
        raise
    click.echo(
        f"\nNext: cd {directory} && qiao serve   (or install {folder.UNIT_FILE}: docs/deploy.md)"
    )


def _encrypt_template_fields(path: Path, manifests: list[TemplateManifest]) -> None:
    """Add the templates' ``encrypted_fields`` to ``[encryption] fields``, before any table."""
    wanted = [f for m in manifests for f in m.encrypted_fields]
    if not wanted:
        return
    settings = SettingsFile.read(path)
    table = settings.data.setdefault("encryption", {})
    names = list(table.get("fields", []))
    table["fields"] = names + [f for f in dict.fromkeys(wanted) if f not in names]
    settings.save()


def _set_up(runtime: Runtime, demo_of: list[str]) -> None:
    """Migrate a new deployment's database, add 'admin' and seed the demo data asked for."""
    migrate_schema(runtime, demo_of=demo_of)
    if _user_exists(runtime, ADMIN_USERNAME):
        click.echo(f"User '{ADMIN_USERNAME}' exists already; kept.")
    else:
        create_user(runtime, ADMIN_USERNAME, ADMIN_DISPLAY_NAME, None, ADMIN_ROLE)
        click.echo(f"Created the administrator '{ADMIN_USERNAME}'.")


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


def _print_admin_token(runtime: Runtime) -> None:
    """A demo is explored through the API at once, so it comes with a token to do it."""
    runtime.audit_log()  # the token's creation is audited, as every token's is
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
        page = runtime.records.list(
            conn, "user", filter={"username": {"eq": username}}, first=1, actor=Actor.system()
        )
    return bool(page.records)


@click.command()
@pass_state
def demo(state: CliState) -> None:
    """Seed the enabled plugins' demo data (once) into the deployment."""
    runtime = state.runtime()
    require_current(runtime)
    result = runtime.migrate(demo_of=runtime.plugins.names)
    if result.plan.empty:
        click.echo("No enabled plugin has demo data.")
    for line in result.plan.render():
        click.echo(line)


@click.command(short_help="Bring the database to the metadata and the enabled plugins.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_state
def migrate(state: CliState, dry_run: bool) -> None:
    """Create the tables, columns and indexes the metadata declares and the database lacks,
    migrate data to the installed versions of the plugins, and bring the records they
    declare (roles, rules, pipelines, approvals) in step, in one transaction."""
    migrate_schema(state.runtime(), dry_run=dry_run)


def _stack_option(name: str, what: str, plain: str, fast: str) -> Callable[..., Any]:
    """A choice of uvicorn's parts: ``auto`` takes the fast one where installed."""
    return click.option(
        f"--{name}",
        type=click.Choice(["auto", plain, fast]),
        default="auto",
        show_default=True,
        help=f"{what}; auto takes {fast} where it is installed (docs/decisions.md).",
    )


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host of qiao.toml).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [server] port).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes, each with its own runtime and pool (docs/deploy.md).",
)
@click.option(
    "--with-worker/--no-worker",
    "with_worker",
    default=True,
    show_default=True,
    help="Also run one event worker (timers, automations, webhooks) in a thread.",
)
@click.option(
    "--access-log/--no-access-log",
    "access_log",
    default=None,
    help="Log every request (default: [server] access_log, off).",
)
@_stack_option("loop", "Event loop", "asyncio", "uvloop")
@_stack_option("http", "HTTP parser", "h11", "httptools")
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    workers: int,
    with_worker: bool,
    access_log: bool | None,
    loop: str,
    http: str,
) -> None:
    """Serve the API (GraphQL at /graphql) and, unless --no-worker, a worker, until interrupted.

    With --workers N (PostgreSQL only), N processes share the port and the event
    worker stays a single thread of this (the supervising) process.
    """
    # The web server and the app load here, not with the module: other commands skip them.
    import uvicorn

    from qiao.core.app import create_app
    from qiao.core.web.graphql_ws import MAX_MESSAGE_BYTES

    config = state.config()
    if workers > 1:
        _refuse_several_processes(config)
    runtime = state.runtime()
    require_current(runtime)
    host = host or config.host
    port = config.port if port is None else port
    options = {
        "host": host,
        "port": port,
        "log_level": "debug" if state.debug else "info",
        "access_log": config.access_log if access_log is None else access_log,
        "loop": loop,
        "http": http,
        # GraphQL subscriptions (docs/graphql.md); frames past the message limit are refused.
        "ws": "websockets-sansio",
        "ws_max_size": MAX_MESSAGE_BYTES,
    }
    with background_worker(runtime, with_worker):
        if workers == 1:
            _run(uvicorn.Config(create_app(runtime), **options))
            return
        # Each server process builds its own runtime, finding the configuration here.
        state.close()
        if config.path is not None:
            os.environ[CONFIG_ENV] = str(config.path)
        _run(
            uvicorn.Config(
                f"{__name__}:worker_app",
                factory=True,
                workers=workers,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                **options,
            )
        )


def _run(server: uvicorn.Config) -> None:
    """Serve as ``uvicorn.run`` does, on a socket bound first, so the banner names the port
    the server got (``--port 0`` asks the system for a free one)."""
    import uvicorn
    from uvicorn.main import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    sock = server.bind_socket()  # says why and exits if the address is taken
    base = f"http://{server.host}:{sock.getsockname()[1]}"
    click.echo(f"Qiao serves {base}; GraphiQL at {base}/graphql (Ctrl+C stops)")
    if server.workers > 1:
        Multiprocess(server, sockets=[sock]).run()
        return
    serving = uvicorn.Server(server)
    serving.run(sockets=[sock])
    if not serving.started:  # the app failed to start; uvicorn has logged why
        sys.exit(STARTUP_FAILURE)


def _refuse_several_processes(config: Config) -> None:
    """Say why ``--workers N`` cannot serve this deployment, before anything starts.

    SQLite lets one process write at a time and makes the others poll its lock,
    so more processes add waits, not throughput. A controllable clock's changes
    reach other processes only within a second, so a request right after
    ``setClock`` could be answered at the old time by another process.
    """
    if make_url(config.database_url).get_backend_name() == "sqlite":
        raise click.UsageError(
            "--workers needs PostgreSQL: SQLite lets one process write at a time, so "
            "serve a SQLite deployment with one process (drop --workers), or move it "
            "to PostgreSQL (docs/deploy.md, 'Scaling out')"
        )
    if config.clock_controllable:
        raise click.UsageError(
            "--workers cannot serve a controllable clock ([clock] controllable = true): "
            "a change reaches other processes only within a second, so serve acceptance "
            "runs with one process (docs/clock.md)"
        )


def worker_app() -> Starlette:
    """The app of one ``serve --workers`` process (an ASGI factory for uvicorn)."""
    from qiao.core.app import create_app

    tune_for_service()  # a process of its own, started without the console entry point
    return create_app(Runtime(Config.load()))


COMMANDS: list[click.Command] = [init, migrate, serve, demo]
