"""``in_thread``: handlers' blocking work in the process's pool, as anyio's hop promised."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from qiao.core.edge import threads
from qiao.core.edge.threads import in_thread

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def test_work_runs_in_another_thread_with_its_arguments() -> None:
    def work(a: int, b: str) -> tuple[str, int, str]:
        return threading.current_thread().name, a, b

    name, a, b = asyncio.run(in_thread(work, 1, "二"))
    assert name.startswith("qiao-request") and name != threading.current_thread().name
    assert (a, b) == (1, "二")


def test_an_exception_reaches_the_caller_as_it_was_raised() -> None:
    class Refused(Exception):
        pass

    def work() -> None:
        raise Refused("no")

    with pytest.raises(Refused, match="no"):
        asyncio.run(in_thread(work))


def test_each_call_sees_the_callers_context_and_leaks_nothing_into_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_thread = ThreadPoolExecutor(1, thread_name_prefix="qiao-request")
    monkeypatch.setattr(threads, "_pool", one_thread)

    def read_then_set() -> str:
        seen = marker.get()
        marker.set("set in the thread")
        return seen

    async def calls() -> list[str]:
        marker.set("the caller's")
        first = await in_thread(read_then_set)
        marker.set("changed by the caller")
        second = await in_thread(read_then_set)
        return [first, second, marker.get()]

    try:
        assert asyncio.run(calls()) == [
            "the caller's",
            "changed by the caller",
            "changed by the caller",
        ]
    finally:
        one_thread.shutdown()


def _peak(calls: int, limiter: anyio.CapacityLimiter | None, work_seconds: float) -> int:
    """How many of ``calls`` concurrent calls ran at the same time, at most."""
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def work() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(work_seconds)
        with lock:
            running[0] -= 1

    async def all_calls() -> None:
        await asyncio.gather(*(in_thread(work, limiter=limiter) for _ in range(calls)))

    asyncio.run(all_calls())
    return peak[0]


def test_a_limiter_bounds_how_many_calls_run_at_once() -> None:
    assert _peak(6, anyio.CapacityLimiter(2), 0.05) == 2


def test_without_a_limiter_calls_run_side_by_side() -> None:
    arrived = threading.Barrier(6, timeout=10)

    def work() -> None:
        arrived.wait()  # breaks (BrokenBarrierError) unless all six run at once

    async def all_calls() -> None:
        await asyncio.gather(*(in_thread(work) for _ in range(6)))

    asyncio.run(all_calls())
    assert arrived.n_waiting == 0 and not arrived.broken


def test_a_cancelled_waiter_waits_for_its_work_to_end() -> None:
    started, ended = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        time.sleep(0.3)
        ended.set()

    async def cancel_midway() -> bool:
        waiter = asyncio.create_task(in_thread(work))
        while not started.is_set():
            await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return ended.is_set()

    assert asyncio.run(cancel_midway()), "the cancellation went on before the work ended"
