"""Rollups under concurrent writes: always equal to a recomputation from scratch.

Writer threads create, update and delete child records while a reader samples
the parents' rollups; each sample is checked against the children read in the
same snapshot, and at the end against every child left.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

MANIFEST = Path(__file__).with_name("computed.yaml")
WRITERS = 4
OPERATIONS = 30


class ComputedEntities:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [ComputedEntities()]


@contextmanager
def snapshot(runtime: Runtime) -> Iterator[Connection]:
    """One read transaction whose statements all see the same committed state."""
    with runtime.db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as tx:
            yield conn
            tx.rollback()


def recomputed(runtime: Runtime, conn: Connection) -> dict[str, tuple[Decimal, int, int]]:
    """deal_total, deal_count and big_deals of every account, from the stored deals."""
    deals = runtime.current().table("cf_deal")
    totals: dict[str, tuple[Decimal, int, int]] = {}
    for account_id, amount in conn.execute(select(deals.c.account_id, deals.c.amount)):
        if account_id is None:
            continue
        total, count, big = totals.get(account_id, (Decimal("0.00"), 0, 0))
        value = amount or Decimal("0.00")
        totals[account_id] = (total + value, count + 1, big + (value >= 1000))
    return totals


def rollups(runtime: Runtime, conn: Connection) -> dict[str, tuple[Decimal, int, int]]:
    page = runtime.records.list(conn, "cf_account", first=500, actor=Actor.system())
    return {r["id"]: (r["deal_total"], r["deal_count"], r["big_deals"]) for r in page.records}


def test_rollups_equal_a_recomputation_under_concurrent_writes(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        accounts = [records.create(ctx, "cf_account", {"name": f"a{i}"})["id"] for i in range(3)]
    failures: list[BaseException] = []
    done = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[str] = []
        try:
            for _ in range(OPERATIONS):
                with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
                    amount = f"{rng.randint(0, 2000)}.{rng.randint(0, 99):02}"
                    action = rng.random()
                    if action < 0.5 or not mine:
                        values = {"name": "d", "account": rng.choice(accounts), "amount": amount}
                        mine.append(records.create(ctx, "cf_deal", values)["id"])
                    elif action < 0.8:
                        change = {"amount": amount, "account": rng.choice(accounts)}
                        records.update(ctx, "cf_deal", rng.choice(mine), change)
                    else:
                        records.delete(ctx, "cf_deal", mine.pop(rng.randrange(len(mine))))
        except BaseException as exc:  # each writer touches only its own records: none may fail
            failures.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                with snapshot(qiao_runtime) as conn:
                    expected = recomputed(qiao_runtime, conn)
                    seen = rollups(qiao_runtime, conn)
                for account_id, values in seen.items():
                    assert values == expected.get(account_id, (Decimal("0.00"), 0, 0))
                samples.append(len(seen))
        except BaseException as exc:
            failures.append(exc)

    samples: list[int] = []
    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(WRITERS)]
    sampler = threading.Thread(target=reader)
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    sampler.join()
    assert not failures, failures
    assert samples, "the reader took no sample"
    with snapshot(qiao_runtime) as conn:
        expected = recomputed(qiao_runtime, conn)
        assert rollups(qiao_runtime, conn) == {
            a: expected.get(a, (Decimal("0.00"), 0, 0)) for a in accounts
        }
        assert sum(count for _, count, _ in expected.values()) > 0
