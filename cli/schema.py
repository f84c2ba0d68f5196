"""``qiao schema export``: the GraphQL SDL, for client code generation.

The SDL is that of the deployment's current metadata, built exactly as the
server builds it, so generated clients match what /graphql answers.
"""

from __future__ import annotations

from pathlib import Path

import click

from qiao.cli.state import CliState, pass_state
from qiao.core.graphql.service import GraphQLService


@click.group()
def schema() -> None:
    """The API's GraphQL schema."""


@schema.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of stdout.",
)
@pass_state
def export(state: CliState, output: Path | None) -> None:
    """Print the schema (SDL) of the deployment's current metadata."""
    sdl = GraphQLService(state.runtime()).schema().schema.as_str() + "\n"
    if output is None:
        click.echo(sdl, nl=False)
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"Wrote the schema to {output}.", err=True)


COMMANDS: list[click.Command] = [schema]
