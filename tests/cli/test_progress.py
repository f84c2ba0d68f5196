"""Progress bars: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from qiao.cli.progress import progress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80), out


def test_a_terminal_sees_the_work_and_its_steps() -> None:
    console, out = _console(terminal=True)
    with progress("Installing education", total=2, console=console) as steps:
        steps.start("Migrating the database schema")
        steps.done()
        steps.done()
    assert "Migrating the database schema" in out.getvalue()


def test_a_pipe_gets_nothing() -> None:
    console, out = _console(terminal=False)
    with progress("Migrating", console=console) as steps:
        steps.start("step")
        steps.done()
    assert out.getvalue() == ""
