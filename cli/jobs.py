"""Commands for the outbox: ``qiao worker``, ``qiao jobs`` and ``qiao webhook``.

``worker`` runs a worker in the foreground until SIGTERM or Ctrl+C (it
finishes the delivery in hand and gives back the rest of its batch). ``jobs``
shows deliveries and their attempts and replays dead letters; ``webhook``
manages outbound webhook endpoints. docs/events.md explains the model.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from qiao.cli.state import CliState, pass_state
from qiao.core.errors import BadUserInput, ConfigurationError, NotFound
from qiao.core.events import queue, signing, wake, webhooks
from qiao.core.ids import is_record_id
from qiao.core.runtime import Runtime
from qiao.core.schema import ddl
from qiao.core.worker import Worker, WorkerSettings, WorkerThread

DEFAULTS = WorkerSettings()


def _ready(state: CliState) -> Runtime:
    runtime = state.runtime()
    with runtime.db.read() as conn:
        if ddl.kernel_revision(conn) != ddl.kernel_head():
            raise ConfigurationError("the database is behind this version; run 'qiao migrate'")
    return runtime


@click.command(short_help="Run a worker: timers, events, deliveries.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULTS.batch_size, show_default=True
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=DEFAULTS.poll_interval,
    show_default=True,
    help="Seconds to wait when there is nothing to do (SQLite).",
)
@click.option(
    "--listen-fallback",
    type=click.FloatRange(min=0.1),
    default=DEFAULTS.listen_fallback,
    show_default=True,
    help="On PostgreSQL, where commits wake workers: seconds between passes all the same.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=DEFAULTS.lease_seconds,
    show_default=True,
    help="Seconds a claimed batch is reserved; past it another worker may take it.",
)
@click.option(
    "--max-attempts", type=click.IntRange(min=1), default=DEFAULTS.max_attempts, show_default=True
)
@click.option(
    "--webhook-timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULTS.webhook_timeout,
    show_default=True,
)
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@pass_state
def worker(
    state: CliState,
    batch_size: int,
    poll_interval: float,
    listen_fallback: float,
    lease: float,
    max_attempts: int,
    webhook_timeout: float,
    once: bool,
) -> None:
    """Fire due timers, fan events out to handlers and webhooks, and run deliveries.

    Run as many as needed, on one machine or many: on PostgreSQL they share the
    work without doing any twice; on SQLite they take turns.
    """
    settings = WorkerSettings(
        batch_size=batch_size,
        poll_interval=poll_interval,
        listen_fallback=listen_fallback,
        lease_seconds=lease,
        max_attempts=max_attempts,
        webhook_timeout=webhook_timeout,
    )
    runtime = _ready(state)
    work = Worker(runtime, settings)
    try:
        if once:
            done = 0
            while (n := work.run_once()) > 0:
                done += n
            click.echo(f"done: {done} timers, events and deliveries")
            return
        stop = wake.Stop()  # a signal wakes the listener's wait at once
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        click.echo(f"worker {work.name} started (SIGTERM or Ctrl+C stops)")
        work.run(stop)
        click.echo(f"worker {work.name} stopped")
    finally:
        work.close()


@contextmanager
def background_worker(runtime: Runtime, enabled: bool) -> Iterator[None]:
    """A worker thread for ``qiao serve`` on the server's started runtime, stopped with it.

    One worker per ``serve`` (also with ``--workers``, whose processes only
    answer requests) keeps SQLite to a single writer of the queue. With
    separate worker pods (the Helm chart), serve with ``--no-worker``. What
    would make every delivery fail (an audit key that cannot be used, keys
    that do not open the data) stops ``serve`` here, at start-up, rather than
    sending each delivery through its retries into the dead letters.
    """
    if not enabled:
        yield
        return
    runtime.start()
    runtime.audit_log()
    thread = WorkerThread(runtime).start()
    try:
        yield
    finally:
        thread.stop()


@click.group()
def jobs() -> None:
    """Deliveries of events to handlers and webhooks: inspect, replay."""


@jobs.command("list")
@click.option("--dead", is_flag=True, help="Only dead letters.")
@click.option("--all", "everything", is_flag=True, help="Include delivered ones.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_state
def list_jobs(state: CliState, dead: bool, everything: bool, limit: int) -> None:
    """List waiting and dead deliveries, newest first."""
    runtime = _ready(state)
    statuses = (
        (queue.DEAD,) if dead else queue.STATUSES if everything else (queue.PENDING, queue.DEAD)
    )
    with runtime.db.read() as conn:
        rows = queue.list_deliveries(conn, statuses, limit)
        totals = queue.counts(conn)
    click.echo(f"{'ID':36}  {'STATUS':7}  {'TRIES':>5}  {'HANDLER':24}  {'EVENT':32}  LAST ERROR")
    for row in rows:
        what = f"{row['entity']}.{row['timer'] or row['operation']}"
        error = (row["last_error"] or "").splitlines()[0][:80] if row["last_error"] else ""
        click.echo(
            f"{row['id']:36}  {row['status']:7}  {row['attempts']:>5}  "
            f"{row['handler'][:24]:24}  {what[:32]:32}  {error}"
        )
    summary = ", ".join(f"{totals.get(s, 0)} {s}" for s in queue.STATUSES)
    click.echo(f"({len(rows)} shown; {summary})")


@jobs.command("show")
@click.argument("delivery_id")
@pass_state
def show_job(state: CliState, delivery_id: str) -> None:
    """Show a delivery, its event and every attempt."""
    runtime = _ready(state)
    _check_id(delivery_id, "delivery")
    with runtime.db.read() as conn:
        found = queue.get_delivery(conn, delivery_id)
    if found is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    click.echo(f"delivery  {found['id']}")
    click.echo(f"handler   {found['handler']}")
    click.echo(f"status    {found['status']} after {found['attempts']} attempt(s)")
    if found["status"] == queue.PENDING:
        click.echo(f"due at    {_when(found['due_at'])}")
    if found["last_error"]:
        click.echo(f"error     {found['last_error']}")
    click.echo("event")
    click.echo(_indent(json.dumps(_jsonable(found["event"]), ensure_ascii=False, indent=2)))
    click.echo("attempts")
    for a in found["history"]:
        line = f"  #{a['number']}  {_when(a['started_at'])}  {a['outcome'] or 'running'}"
        line += f"  by {a['worker']}"
        click.echo(line + (f"\n      {a['error']}" if a["error"] else ""))


@jobs.command("run-due")
@click.option(
    "--max-passes",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Stop after this many worker passes even if work remains.",
)
@pass_state
def run_due(state: CliState, max_passes: int) -> None:
    """Run every timer and delivery due now, then return (acceptance replays, docs/clock.md).

    Due as the deployment's clock says: after 'qiao clock advance 1d', what
    fell due during that day. Deliveries that failed wait for their retry.
    """
    runtime = _ready(state)
    worker = Worker(runtime)
    total = 0
    try:
        for _ in range(max_passes):
            done = worker.run_once()
            if done == 0:
                click.echo(f"done: {total} timers, events and deliveries as of {worker.clock()}")
                return
            total += done
    finally:
        worker.close()
    raise ConfigurationError(f"work remained after {max_passes} passes ({total} done)")


@jobs.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="Every dead letter.")
@pass_state
def retry_jobs(state: CliState, delivery_ids: tuple[str, ...], all_dead: bool) -> None:
    """Run dead (or waiting) deliveries again now, with a fresh budget of attempts."""
    if bool(delivery_ids) == all_dead:
        raise BadUserInput("name delivery ids, or give --all-dead")
    runtime = _ready(state)
    for delivery_id in delivery_ids:
        _check_id(delivery_id, "delivery")
    with runtime.db.write() as conn:
        changed = queue.retry(conn, list(delivery_ids) or None, runtime.records.clock())
    if delivery_ids and changed < len(delivery_ids):
        raise NotFound(
            f"{len(delivery_ids) - changed} of the deliveries are unknown or delivered already"
        )
    click.echo(f"{changed} deliveries will run again")


@click.group()
def webhook() -> None:
    """Outbound webhook endpoints (Standard Webhooks signatures)."""


@webhook.command("add")
@click.argument("url")
@click.option("--entity", help="Only this entity's events (default: every entity).")
@click.option("--secret", help="A 'whsec_' secret (default: a new one, printed once).")
@pass_state
def add_webhook(state: CliState, url: str, entity: str | None, secret: str | None) -> None:
    """Send events to URL, signed with a shared secret."""
    runtime = _ready(state)
    if entity is not None and entity not in runtime.current().registry.entities:
        raise BadUserInput(f"there is no entity {entity!r}", field="entity")
    given = secret is not None
    secret = secret or signing.new_secret()
    try:
        with runtime.db.write() as conn:
            endpoint_id = webhooks.add_endpoint(conn, url, entity, secret, runtime.records.clock())
    except ValueError as exc:
        raise BadUserInput(str(exc)) from None
    click.echo(f"webhook {endpoint_id} -> {url} ({entity or 'every entity'})")
    if not given:
        click.echo(f"secret (shown once; give it to the receiver): {secret}")


@webhook.command("list")
@pass_state
def list_webhooks(state: CliState) -> None:
    """List endpoints; disabled ones say why."""
    runtime = _ready(state)
    with runtime.db.read() as conn:
        endpoints = webhooks.list_endpoints(conn)
    for e in endpoints:
        note = f"  ({e['disabled_reason']})" if e["disabled_reason"] else ""
        click.echo(f"{e['id']}  {e['status']:8}  {e['entity'] or '*':16}  {e['url']}{note}")
    if not endpoints:
        click.echo("no webhook endpoints")


@webhook.command("remove")
@click.argument("endpoint_id")
@pass_state
def remove_webhook(state: CliState, endpoint_id: str) -> None:
    """Stop sending to an endpoint; its waiting deliveries become dead letters."""
    runtime = _ready(state)
    _check_id(endpoint_id, "webhook endpoint")
    with runtime.db.write() as conn:
        if not webhooks.remove_endpoint(conn, endpoint_id):
            raise NotFound(f"no webhook endpoint with id {endpoint_id}")
    click.echo(f"removed webhook {endpoint_id}")


def _check_id(value: str, what: str) -> None:
    if not is_record_id(value):
        raise BadUserInput(f"{value!r} is not a {what} id (a UUID)")


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _when(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


COMMANDS: list[click.Command] = [worker, jobs, webhook]
