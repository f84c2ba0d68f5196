"""``qiao calendar``: business calendars from the command line (docs/calendars.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import yaml

from qiao.cli.state import pass_runtime
from qiao.core.calendars.plugin import import_calendars
from qiao.core.calendars.store import calendars
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime


@click.group("calendar")
def calendar_group() -> None:
    """Business calendars: working days, holidays, make-up days (docs/calendars.md)."""


@calendar_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_runtime
def import_command(runtime: Runtime, file: Path) -> None:
    """Create or update calendars and years from a YAML file with a 'calendars:' list."""
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    for line in import_calendars(runtime, data, Actor.system()):
        click.echo(line)


@calendar_group.command("show")
@click.argument("name")
@click.argument("year", type=int)
@pass_runtime
def show_command(runtime: Runtime, name: str, year: int) -> None:
    """The days off and make-up working days of a calendar's year."""
    calendar = calendars(runtime).get(name)
    day = dt.date(year, 1, 1)
    while day.year == year:
        why = calendar.why_not_working(day)
        if why is not None and why != "weekend":
            click.echo(f"{day}  {why}")
        elif day in calendar.workdays:
            click.echo(f"{day}  {calendar.workdays[day]}（上班）")
        day += dt.timedelta(days=1)


@calendar_group.command("add")
@click.argument("name")
@click.argument("date", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.argument("days", type=int)
@pass_runtime
def add_command(runtime: Runtime, name: str, date: dt.datetime, days: int) -> None:
    """The working day DAYS working days after DATE (as WORKDAY does)."""
    click.echo(calendars(runtime).get(name).add_working_days(date.date(), days).isoformat())


COMMANDS = [calendar_group]
