"""``qiao privacy``: erase a person's data, run the retention sweep (docs/privacy.md)."""

from __future__ import annotations

import json

import click

from qiao.cli.state import pass_runtime
from qiao.core.privacy.erasure import Report, apply_retention, erase_subject
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime


@click.group("privacy")
def privacy() -> None:
    """Personal data: lawful erasure and retention."""


@privacy.command("erase")
@click.argument("entity")
@click.argument("record_id")
@click.option("--reason", help="Why (the person's request, a regulator's order); kept.")
@pass_runtime
def erase(runtime: Runtime, entity: str, record_id: str, reason: str | None) -> None:
    """Erase what the retention rules let go of one person; print the report."""
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        _print(erase_subject(ctx, entity, record_id, reason))


@privacy.command("retention")
@pass_runtime
def retention(runtime: Runtime) -> None:
    """Delete or anonymise every record whose retention period has ended."""
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        _print(apply_retention(ctx))


def _print(report: Report) -> None:
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


COMMANDS = [privacy]
