"""``qiao connector``: add connectors, set their secrets, sync them and see their status.

Secrets are asked for without echo (or read from standard input when it is not a
terminal), never taken as arguments, which would leave them in shell history and in
the process list; they cannot be shown again, only replaced.
"""

from __future__ import annotations

import json
from typing import Any

import click

from qiao.api import Actor, QiaoError, Runtime, Source, pass_runtime
from qiao.plugins.connectors import settings, status, stream, sync
from qiao.plugins.connectors.settings import SECRETS

SYSTEM = Actor.system()
VENDORS = ("wecom", "dingtalk", "kingdee", "yonyou", "sap", "email", "imap", "objectstore")


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a value that reads as JSON (a number, a list) is taken as such."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--setting")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def ask_secrets(names: tuple[str, ...]) -> dict[str, str]:
    return {name: click.prompt(name, hide_input=True) for name in names}


def fail(error: QiaoError) -> None:
    raise click.ClickException(str(error))


@click.group("connector")
def connector() -> None:
    """Connectors to WeCom, DingTalk and ERPs (docs/connectors/)."""


@connector.command("add")
@click.argument("vendor", type=click.Choice(VENDORS))
@click.argument("name")
@click.option("--setting", "pairs", multiple=True, help="key=value, repeatable (corp_id=...).")
@click.option("--base-url", help="The vendor API's address, when not the public one.")
@click.option("--secret", "secret_names", multiple=True, type=click.Choice(SECRETS))
@click.option("--sync-minutes", type=click.IntRange(1, 10080), help="Sync on this interval.")
@pass_runtime
def add(
    runtime: Runtime,
    vendor: str,
    name: str,
    pairs: tuple[str, ...],
    base_url: str | None,
    secret_names: tuple[str, ...],
    sync_minutes: int | None,
) -> None:
    """Add a connector; each --secret is asked for without echo."""
    values: dict[str, Any] = {
        "name": name,
        "vendor": vendor,
        "settings": parse_settings(pairs),
        "base_url": base_url,
        "sync_minutes": sync_minutes,
        **ask_secrets(secret_names),
    }
    records = runtime.records
    try:
        with records.transaction(SYSTEM, Source.CLI) as ctx:
            records.create(ctx, "connector", values)
    except QiaoError as error:
        fail(error)
    click.echo(f"connector {name} ({vendor}) added")


@connector.command("set-secret")
@click.argument("name")
@click.argument("secret", type=click.Choice(SECRETS))
@pass_runtime
def set_secret(runtime: Runtime, name: str, secret: str) -> None:
    """Replace one secret of a connector, asked for without echo."""
    try:
        found = settings.by_name(runtime, name)
        value = click.prompt(secret, hide_input=True)
        records = runtime.records
        with records.transaction(SYSTEM, Source.CLI) as ctx:
            records.update(ctx, "connector", found.id, {secret: value})
    except QiaoError as error:
        fail(error)
    click.echo(f"{secret} of {name} set")


@connector.command("sync")
@click.argument("name")
@pass_runtime
def sync_now(runtime: Runtime, name: str) -> None:
    """Sync a connector now (a worker does it: see qiao jobs)."""
    try:
        found = settings.by_name(runtime, name)
    except QiaoError as error:
        fail(error)
    with runtime.records.transaction(SYSTEM, Source.CLI) as ctx:
        sync.request(ctx, found.id)
    click.echo(f"sync of {name} requested")


@connector.command("status")
@click.argument("name", required=False)
@pass_runtime
def show_status(runtime: Runtime, name: str | None) -> None:
    """Each connector's last success, lag and errors in the last hour."""
    found = status.all_of(runtime, name)
    if name and not found:
        raise click.ClickException(f"no connector named {name!r}")
    for s in found:
        lag = f"{s.lag_seconds}s" if s.lag_seconds is not None else "-"
        click.echo(
            f"{s.name} ({s.vendor}) {'active' if s.active else 'inactive'}"
            f"  secrets: {', '.join(s.secrets_set) or 'none'}"
            f"  last success: {s.last_success_at.isoformat() if s.last_success_at else '-'}"
            f"  lag: {lag}  calls/h: {s.calls_last_hour}  errors/h: {s.errors_last_hour}"
        )
        if s.last_error:
            click.echo(f"  last error: {s.last_error}")


@connector.command("stream")
@click.argument("name")
@pass_runtime
def stream_events(runtime: Runtime, name: str) -> None:
    """Receive a DingTalk connector's events over Stream mode until interrupted."""
    try:
        found = settings.by_name(runtime, name)
        click.echo(f"streaming DingTalk events of {name} (Ctrl-C stops)")
        stream.run(runtime, found, stop=lambda: False)
    except QiaoError as error:
        fail(error)
    except KeyboardInterrupt:
        click.echo("stopped")


COMMANDS: list[click.Command] = [connector]
