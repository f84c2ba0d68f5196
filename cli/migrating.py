"""Bringing a database to its metadata, and saying what changed.

``qiao migrate``, ``qiao init`` and the template commands all migrate; they
report the same lines, and show a progress bar meanwhile on a terminal.
"""

from __future__ import annotations

import click

from qiao.cli.progress import progress
from qiao.core.errors import ConfigurationError
from qiao.core.runtime import Runtime
from qiao.core.storage import ddl


def migrate(runtime: Runtime) -> ddl.SchemaPlan:
    """Migrate and say what was done, one line per table, column and index."""
    with runtime.db.read() as conn:
        kernel_before = ddl.kernel_revision(conn)
    with progress("Migrating the database schema"):
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
    return plan


def require_current(runtime: Runtime) -> None:
    """Refuse to work on a database that is behind the metadata."""
    kernel_current, plan = runtime.pending()
    if not kernel_current or plan is None or not plan.empty:
        raise ConfigurationError("the database is behind the metadata; run 'qiao migrate' first")
