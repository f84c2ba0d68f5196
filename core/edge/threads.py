"""Blocking work of HTTP handlers, run off the event loop in one thread pool per process.

Handlers answer from synchronous code (the GraphQL service, the records service), so
each request hops to a thread and back. anyio's ``to_thread.run_sync``, which
Starlette's ``run_in_threadpool`` calls, spends about 75 µs of CPU on a hop with eight
concurrent callers; this one, on the event loop's ``run_in_executor``, about 39
(``bench/thread_hop.py``, docs/benchmarks.md). A request's own work in the server is a
few hundred µs, so the hop is worth its own door: :func:`in_thread`.

It keeps what anyio's hop promised: each call runs in a copy of the caller's context,
so a context variable set in one call never leaks into the next on the same thread; at
most :data:`THREADS` calls run at once (anyio's default), later ones wait; an
``anyio.CapacityLimiter`` can bound a kind of work below that; and a waiter cancelled
(a server shutting down) waits for its work to end before the cancellation goes on. The
WebSocket protocol keeps anyio's hop: its anyio cancel scopes cancel a waiter again at
every step, which only anyio's own hop shields from.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Args = TypeVarTuple("Args")

#: Calls running at once in a process, as anyio's default limiter allows.
THREADS = 40

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's pool, made on first use (so each server process makes its own)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="qiao-request")
    return _pool


async def in_thread(
    work: Callable[[*Args], T],
    *args: *Args,
    limiter: anyio.CapacityLimiter | None = None,
) -> T:
    """``work(*args)`` in the process's thread pool, in a copy of this context.

    With ``limiter``, the call first takes one of its tokens (waiting for one if
    need be) and holds it until the work is done.
    """
    if limiter is None:
        return await _hop(work, *args)
    async with limiter:
        return await _hop(work, *args)


async def _hop(work: Callable[[*Args], T], *args: *Args) -> T:
    call = functools.partial(contextvars.copy_context().run, work, *args)
    done = asyncio.get_running_loop().run_in_executor(_executor(), call)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        # A thread cannot be stopped: its end is waited for, so what the caller tears
        # down next (a runtime, a connection pool) is not in use by it.
        await asyncio.wait([done])
        raise
