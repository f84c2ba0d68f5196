"""Pruning: only entries past the retention period go, and the chain still verifies after."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from qiao.core.audit import AuditSettings
from qiao.core.config import Config
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.records.context import Actor, Source
from qiao.core.storage import system

NOW = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
OPERATOR = Actor(user_id=None, username="system (os user ops)", is_admin=True)


@pytest.fixture
def aged(audit_log, accounts):
    """Three entries written 200 days ago, then two written now."""
    audit_log.clock = lambda: NOW - dt.timedelta(days=200)
    accounts(3)
    audit_log.clock = lambda: NOW
    accounts(2)
    return audit_log


@pytest.fixture
def prune(qiao_runtime, aged):
    def _prune():
        with qiao_runtime.db.write() as conn:
            return aged.prune(conn, OPERATOR, Source.CLI, "req-prune")

    return _prune


@pytest.fixture
def verify(qiao_runtime, audit_log):
    def _verify():
        with qiao_runtime.db.read() as conn:
            return audit_log.verify(conn)

    return _verify


def test_entries_older_than_the_retention_go_and_the_rest_still_verifies(prune, verify, entries):
    pruned = prune()
    assert (pruned.first, pruned.through, pruned.checkpoint.sequence) == (1, 3, 3)
    kept = entries()
    assert [e.sequence for e in kept] == [4, 5, 6]
    record = kept[-1]
    assert (record.operation, record.actor, record.source) == (
        "audit.prune",
        "system (os user ops)",
        "cli",
    )
    assert json.loads(record.changes) == {
        "first": 1,
        "through": 3,
        "cutoff": "2025-12-03T09:30:00.000000+00:00",
        "retention_days": 180,
    }
    report = verify()
    assert (report.ok, report.first, report.last) == (True, 4, 6)


def test_nothing_young_is_pruned(prune, audit_log):
    assert prune() is not None
    assert prune() is None


def test_entries_deleted_after_a_prune_are_still_named(prune, verify, qiao_runtime):
    prune()
    with qiao_runtime.db.write() as conn:
        conn.execute(system.audit_entry.delete().where(system.audit_entry.c.sequence == 4))
    problem = verify().problem
    assert problem.sequence == 4 and "is missing" in problem.reason


def test_a_prefix_deleted_at_a_checkpoint_without_a_prune_is_named(
    audit_log, accounts, verify, qiao_runtime
):
    """Deleting entries 1-5 at the stored checkpoint looks like a prune, but none was recorded."""
    accounts(7)
    with qiao_runtime.db.write() as conn:
        conn.execute(system.audit_entry.delete().where(system.audit_entry.c.sequence <= 5))
    problem = verify().problem
    assert problem.sequence == 1
    assert "no prune recorded in the log removed them" in problem.reason


def test_a_log_that_does_not_verify_is_not_pruned(aged, qiao_runtime, entries):
    with qiao_runtime.db.write() as conn:
        conn.execute(
            system.audit_entry.update()
            .where(system.audit_entry.c.sequence == 2)
            .values(actor="someone else")
        )
    with qiao_runtime.db.write() as conn, pytest.raises(Conflict, match="entry 2 does not verify"):
        aged.prune(conn, OPERATOR, Source.CLI, "req-prune")
    assert [e.sequence for e in entries()] == [1, 2, 3, 4, 5]


def test_the_checkpoints_of_pruned_entries_go_with_them(prune, qiao_runtime):
    """The first entry's checkpoint goes; the prune adds one at entry 3.

    Entry 4 is checkpointed too, being written long after the last checkpoint,
    and entry 5 as every fifth entry.
    """
    prune()
    table = system.audit_checkpoint
    with qiao_runtime.db.read() as conn:
        stored = conn.execute(select(table.c.sequence).order_by(table.c.sequence)).scalars()
        assert stored.all() == [3, 4, 5]


@pytest.mark.parametrize("days", [0, 30, 179])
def test_a_retention_under_six_months_is_refused(days):
    with pytest.raises(ConfigurationError, match="at least 180 days"):
        AuditSettings(retention_days=days)


def test_the_retention_and_key_file_come_from_qiao_toml(tmp_path: Path):
    path = tmp_path / "qiao.toml"
    path.write_text('[audit]\nkey_file = "keys/audit.key"\nretention_days = 365\n')
    config = Config.load(path, env={})
    assert config.audit == AuditSettings(
        key_file=tmp_path / "keys" / "audit.key",
        retention_days=365,
        checkpoint_file=tmp_path / "audit-checkpoints.jsonl",
    )
    assert Config.load(path, env={"QIAO_AUDIT_KEY_FILE": "/srv/audit.key"}).audit.key_file == (
        Path("/srv/audit.key")
    )
    path.write_text("[audit]\nretention_days = 90\n")
    with pytest.raises(ConfigurationError, match="at least 180 days"):
        Config.load(path, env={})
    path.write_text("[audit]\nretention = 365\n")
    with pytest.raises(ConfigurationError, match="unknown settings: retention"):
        Config.load(path, env={})
