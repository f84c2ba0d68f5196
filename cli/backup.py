"""``qiao backup``: encrypted, consistent backups and their restore into an empty database.

``create`` snapshots every table (SQLite through its online backup API,
PostgreSQL in one REPEATABLE READ transaction) and streams it through SM4-GCM
under a fresh key wrapped by the deployment's KEK. ``restore`` verifies the
whole file first and writes nothing unless it is intact. docs/encryption.md
describes the format.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from qiao.cli.state import CliState, pass_state
from qiao.core.encryption import backup as backups


@click.group("backup")
def backup() -> None:
    """Encrypted backups of the deployment's database (docs/encryption.md)."""


@backup.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def create(state: CliState, file: Path) -> None:
    """Write an encrypted backup to FILE (never overwritten; mode 0600)."""
    runtime = state.runtime()
    provider = runtime.records.encryption.keys.provider
    started = time.monotonic()
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{file} exists; choose a new file name") from None
    try:
        with os.fdopen(fd, "wb") as out:
            info = backups.create(runtime.db.engine, provider, out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        file.unlink(missing_ok=True)
        raise
    seconds = max(time.monotonic() - started, 1e-6)
    click.echo(
        f"backed up {info.rows} rows of {info.tables} tables to {file} "
        f"({info.plaintext_bytes / 1e6:.1f} MB in {seconds:.1f} s)"
    )


@backup.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_state
def restore(state: CliState, file: Path) -> None:
    """Restore FILE into this deployment's empty database, after verifying all of it."""
    runtime = state.runtime()
    provider = runtime.records.encryption.keys.provider
    with file.open("rb") as src:
        info = backups.restore(runtime, src, provider)
    click.echo(f"restored {info.rows} rows of {info.tables} tables from {file}")


COMMANDS = (backup,)
