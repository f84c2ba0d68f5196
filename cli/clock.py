"""``qiao clock``: show, set and advance the deployment's clock (docs/clock.md).

Only where qiao.toml says ``[clock] controllable = true``; the server and its
workers follow within a second. Each change is written to the audit log.
"""

from __future__ import annotations

import datetime as dt

import click

from qiao.cli.state import CliState, pass_state
from qiao.core.errors import BadUserInput, Forbidden
from qiao.core.records.context import Actor, Source
from qiao.core.records.host import ControllableClock
from qiao.core.replay.clock import parse_duration


def _controllable(state: CliState) -> ControllableClock:
    clock = state.runtime().replay_clock
    if clock is None:
        raise Forbidden(
            "this deployment's clock follows real time; set [clock] controllable = true "
            "in qiao.toml to replay dates (never in production)"
        )
    return clock


@click.group()
def clock() -> None:
    """The deployment's clock, for acceptance runs that replay dates."""


@clock.command("show")
@pass_state
def show(state: CliState) -> None:
    """Print the deployment's current time."""
    runtime = state.runtime()
    click.echo(runtime.records.clock().isoformat(timespec="seconds"))


@clock.command("set")
@click.argument("when")
@pass_state
def set_clock(state: CliState, when: str) -> None:
    """Set the clock to WHEN (2025-05-27T08:00+08:00); it runs on from there."""
    try:
        instant = dt.datetime.fromisoformat(when)
    except ValueError:
        raise BadUserInput(f"{when!r} is not a time like 2025-05-27T08:00+08:00") from None
    now = _controllable(state).set(instant, Actor.system(), Source.CLI)
    click.echo(now.isoformat(timespec="seconds"))


@clock.command("advance")
@click.argument("by")
@pass_state
def advance(state: CliState, by: str) -> None:
    """Move the clock forward BY (1d, 2h30m, 1w)."""
    now = _controllable(state).advance(parse_duration(by), Actor.system(), Source.CLI)
    click.echo(now.isoformat(timespec="seconds"))


@clock.command("reset")
@pass_state
def reset(state: CliState) -> None:
    """Put the clock back to real time."""
    now = _controllable(state).reset(Actor.system(), Source.CLI)
    click.echo(now.isoformat(timespec="seconds"))


COMMANDS: list[click.Command] = [clock]
