"""Driving the events worker by hand in tests: no threads, no sleeps.

A test writes records, then calls :func:`drain` to run worker passes (fire due
timers, fan events out, run deliveries) until one finds nothing to do. With the
controllable clock (``qiao_clock``) a test moves time forward and drains again
to see what timers did.
"""

from __future__ import annotations

from qiao.core.worker import Worker, WorkerSettings

#: Big batches, a short idle wait, retries soon: what a test wants of a worker.
TEST_SETTINGS = WorkerSettings(batch_size=50, poll_interval=0.01, backoff_base=10.0, max_attempts=3)


def drain(worker: Worker, rounds: int = 30) -> None:
    """Run passes until one finds nothing to do; fail if work remains after ``rounds``."""
    for _ in range(rounds):
        if worker.run_once() == 0:
            return
    raise AssertionError(f"the worker still had work after {rounds} passes")
