"""``qiao audit``: verify the audit log, checkpoint it, prune it, make its keys.

None of these commands changes or removes an entry other than by pruning
entries older than the retention period, which first verifies the log and
leaves a checkpoint, so an administrator cannot rewrite the trail through Qiao.
Each command exits 1 with one line on stderr when it cannot do its job, and
``verify`` exits 1 when the log does not verify.
"""

from __future__ import annotations

import getpass
import json
import uuid
from pathlib import Path

import click

from qiao.cli.state import CliState, pass_state
from qiao.core import audit as audit_log
from qiao.core.audit.chain import Checkpoint, instant
from qiao.core.crypto.keys import generate_key_file
from qiao.core.errors import ConfigurationError
from qiao.core.records.context import Actor, Source


def _bound(state: CliState) -> audit_log.AuditLog:
    """The audit log the started runtime bound (the ``audit`` plugin's start-up)."""
    log = audit_log.bound(state.runtime())
    if log is None:
        raise ConfigurationError(
            "no audit key is configured: set [audit] key_file in qiao.toml "
            "(make one with 'qiao audit create-key FILE')"
        )
    return log


@click.group("audit")
def audit() -> None:
    """The tamper-evident audit log (docs/audit.md)."""


@audit.command("verify")
@click.option(
    "--from-checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Start from an exported checkpoint, and require every entry it vouches for.",
)
@click.option(
    "--ignore-checkpoint-file",
    is_flag=True,
    help="Do not require the latest checkpoint of [audit] checkpoint_file.",
)
@pass_state
def verify(state: CliState, checkpoint_file: Path | None, ignore_checkpoint_file: bool) -> None:
    """Check every entry's MAC and order; name the first entry that does not verify.

    The log must also reach the latest checkpoint of the checkpoint file kept
    outside the database, with the same MAC and key, so an erased or truncated
    log does not verify.
    """
    log = _bound(state)
    anchor = _read_checkpoint(checkpoint_file) if checkpoint_file else None
    with state.runtime().db.read() as conn:
        report = log.verify(conn, anchor, external=not ignore_checkpoint_file)
    if report.problem is not None:
        click.echo(f"audit log does NOT verify: {report.problem}", err=True)
        raise SystemExit(1)
    if report.count == 0:
        click.echo(f"audit log verified: no entries after entry {report.first - 1}")
    else:
        click.echo(
            f"audit log verified: entries {report.first} to {report.last} ({report.count} entries)"
        )


@audit.command("checkpoint")
@click.option(
    "--export",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the checkpoint as JSON to FILE ('-' for stdout); keep it elsewhere.",
)
@pass_state
def checkpoint(state: CliState, export_file: Path | None) -> None:
    """Store a signed checkpoint of the log as it is now."""
    log = _bound(state)
    with state.runtime().db.write() as conn:
        made = log.checkpoint(conn)
    document = json.dumps(made.export(), indent=2) + "\n"
    if export_file is not None and str(export_file) == "-":
        click.echo(document, nl=False)
        return
    if export_file is not None:
        export_file.write_text(document, encoding="utf-8")
    click.echo(f"checkpoint at entry {made.sequence} ({instant(made.at)})")


@audit.command("prune")
@pass_state
def prune(state: CliState) -> None:
    """Remove entries older than [audit] retention_days, after verifying the log."""
    log = _bound(state)
    actor = Actor(user_id=None, username=f"system (os user {getpass.getuser()})", is_admin=True)
    with state.runtime().db.write() as conn:
        pruned = log.prune(conn, actor, Source.CLI, uuid.uuid4().hex)
    days = log.settings.retention_days
    if pruned is None:
        click.echo(f"nothing to prune: no entry is older than {days} days")
        return
    click.echo(
        f"pruned entries {pruned.first} to {pruned.through} (older than {days} days); "
        f"verification now starts from the checkpoint at entry {pruned.checkpoint.sequence}"
    )


@audit.command("init-key")
@pass_state
def init_key(state: CliState) -> None:
    """Make the audit log's MAC key in the database, wrapped by [audit] key_file.

    The migration that creates a new deployment's tables ('qiao init') does this
    already. It is done once: a write never makes a key, so a log erased
    together with its key stops recording instead of starting over, and this
    command refuses while the checkpoint file vouches for an earlier log.
    """
    log = _bound(state)
    with state.runtime().db.write() as conn:
        key_id = log.create_key(conn)
    click.echo(f"created the audit key {key_id}; the audit log now records every change")


@audit.command("create-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def create_key(path: Path) -> None:
    """Create a key file for the audit log (mode 0600); name it in [audit] key_file."""
    try:
        generate_key_file(path)
    except FileExistsError:
        raise click.ClickException(
            f"{path} exists already; Qiao never overwrites a key file"
        ) from None
    click.echo(f"created {path}; keep a copy apart from the database and its backups")


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_export(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None


COMMANDS: list[click.Command] = [audit]
