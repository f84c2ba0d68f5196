"""Concurrent writers: every entry gets the next sequence number and chains to its predecessor."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from qiao.core.records.context import Actor, Source

WRITERS = 8
WRITES = 10


def test_concurrent_writers_produce_a_gap_free_verifiable_chain(qiao_runtime, audit_log, entries):
    records = qiao_runtime.records

    def writer(number: int) -> None:
        for i in range(WRITES):
            with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
                account = records.create(ctx, "account", {"name": f"writer {number}-{i}"})
                records.update(ctx, "account", account["id"], {"employees": i})

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))

    stored = entries()
    assert [e.sequence for e in stored] == list(range(1, 2 * WRITERS * WRITES + 1))
    # Both entries of a transaction are adjacent: the head stays locked until commit.
    for created, updated in zip(stored[::2], stored[1::2], strict=True):
        assert (created.operation, updated.operation) == ("create", "update")
        assert created.record_id == updated.record_id
        assert created.request_id == updated.request_id
    with qiao_runtime.db.read() as conn:
        report = audit_log.verify(conn)
    assert (report.ok, report.last) == (True, 2 * WRITERS * WRITES)


class Refused(Exception):
    """Raised inside a transaction to roll it back."""


def test_a_rolled_back_transaction_leaves_no_entry_and_no_hole(qiao_runtime, audit_log, entries):
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "account", {"name": "kept 1"})
    with pytest.raises(Refused), records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "account", {"name": "rolled back"})
        raise Refused
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "account", {"name": "kept 2"})

    stored = entries()
    assert [(e.sequence, json.loads(e.changes)["name"]["new"]) for e in stored] == [
        (1, "kept 1"),
        (2, "kept 2"),
    ]
    with qiao_runtime.db.read() as conn:
        report = audit_log.verify(conn)
    assert (report.ok, report.last) == (True, 2)


def test_an_open_transaction_does_not_hold_the_head_until_it_commits(
    qiao_runtime, audit_log, entries, qiao_backend
):
    """Entries are chained at commit, so a writer that started later but commits first
    is numbered first, and the one still open does not keep it waiting."""
    if qiao_backend != "postgresql":
        pytest.skip("SQLite admits one write transaction at a time")
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as first:
        records.create(first, "account", {"name": "started first"})

        def second() -> None:
            with records.transaction(Actor.system(), Source.CLI) as ctx:
                records.create(ctx, "account", {"name": "committed first"})

        with ThreadPoolExecutor(1) as pool:
            pool.submit(second).result(timeout=30)  # would wait for `first` under a held head
    names = [json.loads(e.changes).get("name", {}).get("new") for e in entries()]
    assert names == ["committed first", "started first"]
    with qiao_runtime.db.read() as conn:
        report = audit_log.verify(conn)
    assert (report.ok, report.last) == (True, 2)


def test_a_checkpoint_in_a_transaction_covers_its_own_entries(qiao_runtime, audit_log, entries):
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "account", {"name": "before the checkpoint"})
        checkpoint = audit_log.checkpoint(ctx.connection)
    (entry,) = entries()
    assert (checkpoint.sequence, checkpoint.mac) == (entry.sequence, entry.mac)
