"""The change feed: every committed record write, in commit order, none skipped."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.records.changes import bounds, changes_since
from qiao.core.records.context import Actor, Source

WRITERS = 6
WRITES = 8


def test_the_feed_lists_creates_updates_and_deletes_in_order(qiao_runtime):
    records = qiao_runtime.records
    start = changes_since(qiao_runtime, 0, limit=10_000)
    after = start[-1].sequence if start else 0
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        account = records.create(ctx, "account", {"name": "宁波精密"})
        contact = records.create(ctx, "contact", {"name": "张三", "account_id": account["id"]})
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        records.update(ctx, "account", account["id"], {"employees": 12})
        records.delete(ctx, "contact", contact["id"])

    seen = [(c.entity, c.record_id, c.operation) for c in changes_since(qiao_runtime, after)]
    assert seen == [
        ("account", account["id"], "create"),
        ("contact", contact["id"], "create"),
        ("account", account["id"], "update"),
        ("contact", contact["id"], "delete"),
    ]
    only_accounts = changes_since(qiao_runtime, after, ["account"])
    assert [c.operation for c in only_accounts] == ["create", "update"]
    both = changes_since(qiao_runtime, after, ["contact", "account"], limit=3)
    assert [c.sequence for c in both] == sorted(c.sequence for c in both)
    assert [(c.entity, c.operation) for c in both] == [
        ("account", "create"),
        ("contact", "create"),
        ("account", "update"),
    ]
    assert changes_since(qiao_runtime, after, []) == []
    with qiao_runtime.db.read() as conn:
        feed = bounds(conn)
    assert feed.head >= both[-1].sequence
    assert feed.covers(after) and not feed.covers(feed.head + 1)


def test_a_reader_polling_during_concurrent_writes_skips_nothing(qiao_runtime):
    """Writers race; a reader reads on from its last sequence and must see every write."""
    records = qiao_runtime.records
    before = changes_since(qiao_runtime, 0, limit=10_000)
    last = before[-1].sequence if before else 0
    done = threading.Event()
    read: list[int] = []

    def writer(number: int) -> None:
        for i in range(WRITES):
            with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
                records.create(ctx, "account", {"name": f"writer {number}-{i}"})

    def reader() -> None:
        position = last
        while True:
            finished = done.is_set()
            page = changes_since(qiao_runtime, position, ["account"], limit=7)
            read.extend(c.sequence for c in page)
            if page:
                position = page[-1].sequence
            elif finished:
                return

    polling = threading.Thread(target=reader)
    polling.start()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))
    done.set()
    polling.join()

    everything = changes_since(qiao_runtime, last, ["account"], limit=10_000)
    assert len(everything) == WRITERS * WRITES
    assert read == [c.sequence for c in everything]  # in order, none twice, none skipped


def test_bad_positions_and_limits_are_refused(qiao_runtime):
    with pytest.raises(BadUserInput) as refused:
        changes_since(qiao_runtime, -1)
    assert refused.value.field == "after"
    with pytest.raises(BadUserInput) as refused:
        changes_since(qiao_runtime, 0, limit=0)
    assert refused.value.field == "limit"


class TestWithoutAuditKey:
    @pytest.fixture
    def qiao_audited_setup(self) -> bool:
        return False

    @pytest.fixture
    def qiao_config(self, qiao_database_url, qiao_enabled_plugins, tmp_path):
        from qiao.core.testing.pytest_plugin import _config

        return _config(
            qiao_database_url,
            qiao_enabled_plugins,
            tmp_path / "deployment",
            tmp_path / "no-key.json",
            audited=False,
        )

    def test_a_deployment_without_an_audit_key_has_no_feed(self, qiao_runtime):
        records = qiao_runtime.records
        with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
            records.create(ctx, "account", {"name": "unrecorded"})
        with pytest.raises(ConfigurationError, match="no audit log"):
            changes_since(qiao_runtime, 0)
