"""``qiao schema export``: the GraphQL SDL, for client code generation.

The SDL is that of the deployment's current metadata, built exactly as the
server builds it, so generated clients match what /graphql answers. Types, fields,
arguments and enum values are printed in name order, so two exports diff line by
line and linters that expect sorted SDL (graphql-schema-linter's defaults) pass;
field order carries no meaning in GraphQL, and ``metadata`` keeps a picklist's order.
"""

from __future__ import annotations

from pathlib import Path

import click
from graphql import build_schema, lexicographic_sort_schema, print_schema

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
    served = GraphQLService(state.runtime()).schema().schema.as_str()
    sdl = print_schema(lexicographic_sort_schema(build_schema(served))) + "\n"
    if output is None:
        click.echo(sdl, nl=False)
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"Wrote the schema to {output}.", err=True)


COMMANDS: list[click.Command] = [schema]
