"""Progress for long work: a bar on a terminal, nothing otherwise.

A person at a terminal should see that a migration or an install is moving;
a script, a pipe or a systemd journal should get only the result lines. The
bar is drawn on stderr and cleared when the work ends, so stdout stays the
same whether or not a terminal is attached.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Steps:
    """Advances one task of a progress display (or of none, when quiet)."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def start(self, description: str) -> None:
        """Show what is being done now."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)

    def done(self, steps: int = 1) -> None:
        """One step (or ``steps`` of them, such as a page of rows) is finished."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)


@contextmanager
def progress(
    description: str, total: int | None = None, console: Console | None = None
) -> Iterator[Steps]:
    """A bar of ``total`` steps (a pulsing one when ``None``) while the block runs."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield Steps(None, None)
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield Steps(bar, bar.add_task(description, total=total))
