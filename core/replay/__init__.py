"""The replay clock: an administrator sets and advances a deployment's time (docs/clock.md).

Acceptance runs replay "the daily jobs as of 2025-05-27" against a live
server. Every date-driven behaviour reads the runtime's clock; with
``[clock] controllable = true`` that clock is a :class:`ReplayClock`, whose
offset from real time is kept in the database so the server, its workers and
the ``qiao`` command all share it.
"""

from qiao.core.replay.clock import ReplayClock, parse_duration

__all__ = ["ReplayClock", "parse_duration"]
