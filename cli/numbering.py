"""``qiao numbering``: declared record numbers and their counters (docs/numbering.md)."""

from __future__ import annotations

import click

from qiao.cli.state import pass_runtime
from qiao.core.numbering import sequence
from qiao.core.numbering.plugin import declarations
from qiao.core.runtime import Runtime


@click.group("numbering")
def numbering_group() -> None:
    """Record numbers from declared patterns (docs/numbering.md)."""


@numbering_group.command("list")
@pass_runtime
def list_sequences(runtime: Runtime) -> None:
    """Each declared numbering and the last number taken per period."""
    with runtime.db.read() as conn:
        taken = sequence.current(conn)
    for entity, decls in sorted(declarations(runtime).items()):
        for decl in decls:
            click.echo(f"{entity}.{decl.field}  {decl.pattern}  ({decl.parsed.resets})")
            for name, period, value in taken:
                if name == decl.sequence_name:
                    click.echo(f"  {period or '-'}  {value}")


COMMANDS = [numbering_group]
