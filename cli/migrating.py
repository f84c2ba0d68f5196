"""Bringing a database to its metadata, and saying what changed.

``qiao migrate``, ``qiao init`` and the template commands all migrate; they
report the same lines, and show a progress bar meanwhile on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from qiao.cli.progress import progress
from qiao.core.errors import ConfigurationError
from qiao.core.packages.apply import Migration
from qiao.core.runtime import Runtime


def migrate(runtime: Runtime, *, demo_of: Iterable[str] = (), dry_run: bool = False) -> Migration:
    """Migrate (see :meth:`Runtime.migrate`) and say what was done, one line per item."""
    label = "Planning the migration" if dry_run else "Migrating the database"
    with progress(label):
        result = runtime.migrate(demo_of=demo_of, dry_run=dry_run)
    for line in result.plan.render(done=not dry_run):
        click.echo(line)
    if result.plan.empty:
        click.echo("The database is up to date.")
    return result


def require_current(runtime: Runtime) -> None:
    """Refuse to work on a database that is behind the metadata."""
    kernel_current, plan = runtime.pending()
    if not kernel_current or plan is None or not plan.empty:
        raise ConfigurationError("the database is behind the metadata; run 'qiao migrate' first")
