"""The hop of a request's blocking work to a thread and back: ``in_thread`` against anyio's.

Every HTTP handler of Qiao answers from synchronous code, so each request makes one hop
(``qiao.core.edge.threads.in_thread``). The script measures that hop alone, in one
process on uvloop as ``qiao serve`` runs: eight concurrent callers each send their share
of ``--calls`` calls of a function that does nothing, through ``in_thread`` and through
anyio's ``to_thread.run_sync`` (what Starlette's ``run_in_threadpool`` calls), rounds
alternating. Before printing, it checks every call came back with its own answer. It
prints the process's CPU per hop, the median of the rounds, for each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
import uvloop
from serving import print_medians

from qiao.core.edge.threads import in_thread

CALLERS = 8


def echo(value: int) -> int:
    return value


async def through_qiao(value: int) -> int:
    return await in_thread(echo, value)


async def through_anyio(value: int) -> int:
    return await anyio.to_thread.run_sync(echo, value)


async def cpu_per_hop(hop: Callable[[int], Awaitable[int]], calls: int) -> float:
    """CPU µs per hop of ``calls`` hops from :data:`CALLERS` concurrent callers."""

    async def caller(start: int) -> list[int]:
        return [await hop(value) for value in range(start, calls, CALLERS)]

    started = time.process_time()
    answers = await asyncio.gather(*(caller(start) for start in range(CALLERS)))
    spent = time.process_time() - started
    assert sorted(v for part in answers for v in part) == list(range(calls)), "lost calls"
    return spent / calls * 1e6


async def run(calls: int, rounds: int) -> None:
    ways = {"in_thread": through_qiao, "anyio": through_anyio}
    for hop in ways.values():  # warm-up: both pools' threads started
        await cpu_per_hop(hop, CALLERS * 10)
    figures: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, hop in ways.items():
            figures[name].append(await cpu_per_hop(hop, calls))
    print(
        f"{calls} calls from {CALLERS} concurrent callers, {rounds} rounds alternating; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print_medians(figures, "µs of CPU a hop", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="hops a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 hops, 3 rounds")
    args = parser.parse_args()
    calls, rounds = (1000, 3) if args.quick else (args.calls, args.rounds)
    uvloop.run(run(calls, rounds))


if __name__ == "__main__":
    main()
