"""What every command shares: the chosen configuration and the runtime built from it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from qiao.core.config import Config
from qiao.core.runtime import Runtime


@dataclass
class CliState:
    """Built by the ``qiao`` group; commands get it with ``@pass_state``."""

    config_path: str | None = None
    debug: bool = False
    _runtime: Runtime | None = field(default=None, repr=False)

    def config(self) -> Config:
        return Config.load(Path(self.config_path) if self.config_path else None)

    def runtime(self) -> Runtime:
        """The deployment's runtime, started (plugins loaded; the schema is not migrated here)."""
        if self._runtime is None:
            self._runtime = Runtime(self.config())
            self._runtime.start()
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


pass_state = click.make_pass_decorator(CliState)


def pass_runtime(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the deployment's started runtime as its first argument.

    For plugin commands (``qiao_cli_commands``): the runtime is built from the
    configuration the ``qiao`` group chose and closed when the command ends.
    """

    @pass_state
    @functools.wraps(command)
    def run(state: CliState, *args: Any, **kwargs: Any) -> Any:
        return command(state.runtime(), *args, **kwargs)

    return run
