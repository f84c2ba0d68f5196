"""A small installed-style plugin: a warranty entity on top of crm, and a CLI command."""

from __future__ import annotations

from pathlib import Path

import click

from qiao.core.hookmarkers import hookimpl

QIAO_DEPENDS = ("crm",)
MANIFEST = Path(__file__).with_name("warranty.yaml")


@click.command("warranty-report")
@click.argument("region")
def warranty_report(region: str) -> None:
    """Print the warranty report header for a region."""
    click.echo(f"warranty report: {region}")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_cli_commands() -> list[click.Command]:
    return [warranty_report]
