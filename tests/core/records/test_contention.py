"""Transactions the database ends to let a concurrent one through.

Two writers that lock the same two accounts in opposite orders deadlock on
PostgreSQL, which ends one of them. That one is a ``CONFLICT`` the caller may
send again (nothing of it written), and :meth:`RecordsService.run` sends it
again itself. SQLite admits one write transaction at a time, so it has no
such case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qiao.core.edge.errors import status_of
from qiao.core.errors import Conflict, Contended
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.runtime import Runtime

SYSTEM = Actor.system()


@pytest.fixture
def accounts(qiao_runtime: Runtime, qiao_backend: str) -> tuple[str, str]:
    if qiao_backend != "postgresql":
        pytest.skip("SQLite admits one write transaction at a time")
    records = qiao_runtime.records
    with records.transaction(SYSTEM, Source.SYSTEM) as ctx:
        return tuple(  # type: ignore[return-value]
            records.create(ctx, "account", {"name": name})["id"] for name in ("甲", "乙")
        )


def crossing(
    runtime: Runtime, accounts: tuple[str, str]
) -> tuple[Callable[[str, int], Callable[[WriteContext], None]], list[str]]:
    """Work for two writers: each renames one account, waits for the other, then the other
    account, the second writer in the opposite order. Only first runs meet at the barrier."""
    met = threading.Barrier(2, timeout=10)
    runs: list[str] = []

    def writer(name: str, first: int) -> Callable[[WriteContext], None]:
        def work(ctx: WriteContext) -> None:
            runs.append(name)
            order = accounts if first == 0 else accounts[::-1]
            runtime.records.update(ctx, "account", order[0], {"industry": name})
            if runs.count(name) == 1:
                met.wait()
            runtime.records.update(ctx, "account", order[1], {"industry": name})

        return work

    return writer, runs


def descriptions(runtime: Runtime, accounts: tuple[str, str]) -> list[Any]:
    with runtime.db.read() as conn:
        return [
            runtime.records.require(conn, "account", id_, actor=SYSTEM)["industry"]
            for id_ in accounts
        ]


def test_the_writer_the_database_ends_gets_a_conflict_to_send_again_and_writes_nothing(
    qiao_runtime: Runtime, accounts: tuple[str, str]
) -> None:
    writer, _ = crossing(qiao_runtime, accounts)
    records = qiao_runtime.records

    def once(name: str, first: int) -> str:
        with records.transaction(SYSTEM, Source.SYSTEM) as ctx:
            writer(name, first)(ctx)
        return name

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(once, "a", 0), pool.submit(once, "b", 1)]
        outcomes = [f.exception() or f.result() for f in futures]

    ended = [o for o in outcomes if isinstance(o, Contended)]
    committed = [o for o in outcomes if isinstance(o, str)]
    assert len(ended) == 1 and len(committed) == 1, outcomes
    assert ended[0].extensions() == {"code": "CONFLICT", "retry": True}
    assert status_of(ended[0]) == 409
    # Not a Conflict: a handler of a unique clash (a replayed callback) must not take it for one.
    assert not isinstance(ended[0], Conflict)
    assert "send it again" in ended[0].message
    assert descriptions(qiao_runtime, accounts) == [committed[0], committed[0]]


def test_run_sends_the_ended_transaction_again_and_both_writers_commit(
    qiao_runtime: Runtime, accounts: tuple[str, str]
) -> None:
    writer, runs = crossing(qiao_runtime, accounts)
    records = qiao_runtime.records
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(records.run, SYSTEM, Source.SYSTEM, writer(name, first))
            for name, first in (("a", 0), ("b", 1))
        ]
        for future in futures:
            future.result()

    assert sorted(runs) == ["a", "a", "b"] or sorted(runs) == ["a", "b", "b"]
    last = runs[-1]
    assert descriptions(qiao_runtime, accounts) == [last, last]
