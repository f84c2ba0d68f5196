"""Concurrent writers: every entry gets the next sequence number and chains to its predecessor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
