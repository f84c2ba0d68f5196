"""A clock tests move by hand, for the runtime, the worker and timers.

It follows the wall clock until told otherwise, so tests that never touch it
see time pass as usual; :meth:`TestClock.advance` jumps ahead (hours pass in
a call, so a two-hour deadline is tested without waiting) and
:meth:`TestClock.set` stops it at an instant, where it stays until moved again.
"""

from __future__ import annotations

import datetime as dt
import threading

from qiao.core.config import Config


class TestClock:
    """A time-zone-aware clock (a :data:`~qiao.core.records.service.Clock`) tests control."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = dt.timedelta()
        self._frozen: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return dt.datetime.now(dt.UTC) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def set(self, instant: dt.datetime) -> None:
        """Stop the clock at ``instant`` (time-zone-aware)."""
        if instant.tzinfo is None:
            raise ValueError("the clock needs a time-zone-aware instant")
        with self._lock:
            self._frozen = instant

    def advance(self, *, seconds: float = 0, minutes: float = 0, hours: float = 0) -> dt.datetime:
        """Move the clock forward (stopped or running); returns the new time."""
        step = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours)
        if step < dt.timedelta():
            raise ValueError("the clock only moves forward")
        with self._lock:
            if self._frozen is not None:
                self._frozen += step
            else:
                self._offset += step
        return self()


def controllable(config: Config) -> Config:
    """``config`` with ``[clock] controllable = true``, as an acceptance deployment has it."""
    assert config.path is not None
    text = config.path.read_text(encoding="utf-8")
    config.path.write_text(text + "\n[clock]\ncontrollable = true\n", encoding="utf-8")
    return Config.load(config.path, env={})
