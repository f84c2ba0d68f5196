"""The log is anchored outside the database: erasing or truncating it is detected.

The attacks below need only write access to the database: they delete entries,
rewind the chain head, drop the stored checkpoints and the wrapped key.
"""

from __future__ import annotations

import dataclasses
import json
import stat

import pytest
from sqlalchemy import delete, select, update

from qiao.core.audit.chain import GENESIS_MAC
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.records.context import Actor, Source
from qiao.core.storage import system
from qiao.core.testing.statements import count_statements

from .conftest import CHECKPOINT_EVERY


def verify(runtime, log):
    with runtime.db.read() as conn:
        return log.verify(conn)


def file_sequences(path):
    return [json.loads(line)["sequence"] for line in path.read_text().splitlines()]


def erase_everything(runtime):
    """Delete every entry, checkpoint and key, and reset the head as if never written."""
    with runtime.db.write() as conn:
        conn.execute(delete(system.audit_entry))
        conn.execute(delete(system.audit_checkpoint))
        conn.execute(delete(system.audit_key))
        conn.execute(
            update(system.audit_head).values(sequence=0, mac=GENESIS_MAC.hex(), key_id=None)
        )


def rewind_to(runtime, sequence):
    """Cut the tail after ``sequence`` and move the head and stored checkpoints back to it."""
    entries = system.audit_entry
    with runtime.db.write() as conn:
        mac = conn.execute(select(entries.c.mac).where(entries.c.sequence == sequence)).scalar()
        conn.execute(delete(entries).where(entries.c.sequence > sequence))
        checkpoints = system.audit_checkpoint
        conn.execute(delete(checkpoints).where(checkpoints.c.sequence > sequence))
        conn.execute(update(system.audit_head).values(sequence=sequence, mac=mac))


def test_checkpoints_reach_the_file_at_the_first_entry_and_every_n(
    accounts, checkpoint_file, audit_log
):
    accounts(2 * CHECKPOINT_EVERY)
    assert file_sequences(checkpoint_file) == [1, CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]
    assert stat.S_IMODE(checkpoint_file.stat().st_mode) == 0o600


def test_an_erased_log_and_key_are_not_minted_anew_and_do_not_verify(
    accounts, audit_log, qiao_runtime
):
    accounts(3)
    erase_everything(qiao_runtime)
    with pytest.raises(ConfigurationError, match="the audit log has no key"):
        accounts(1)
    problem = verify(qiao_runtime, audit_log).problem
    assert problem is not None and "checkpoint file" in problem.reason
    with qiao_runtime.db.write() as conn, pytest.raises(Conflict, match="vouches for 1 entries"):
        audit_log.create_key(conn)


def test_a_cut_tail_with_a_rewound_head_does_not_verify(accounts, audit_log, qiao_runtime):
    accounts(CHECKPOINT_EVERY + 2)
    rewind_to(qiao_runtime, CHECKPOINT_EVERY - 1)
    assert verify(qiao_runtime, audit_log).ok is False
    problem = verify(qiao_runtime, audit_log).problem
    assert problem.sequence == CHECKPOINT_EVERY
    assert f"vouches for entries up to {CHECKPOINT_EVERY}" in problem.reason


def test_a_checkpoint_is_due_after_some_minutes_as_well(
    accounts, audit_log, qiao_runtime, qiao_clock, checkpoint_file
):
    accounts(2)
    qiao_clock.advance(minutes=audit_log.settings.checkpoint_minutes + 1)
    accounts(1)
    assert file_sequences(checkpoint_file) == [1, 3]
    rewind_to(qiao_runtime, 2)
    assert "vouches for entries up to 3" in verify(qiao_runtime, audit_log).problem.reason


def test_writes_ask_for_the_last_checkpoint_only_once_the_known_one_is_old(
    accounts, audit_log, qiao_runtime, qiao_clock, checkpoint_file
):
    accounts(2)
    with count_statements(qiao_runtime.db.engine) as seen:
        accounts(1)
    assert not [s for s in seen.statements if "qiao_audit_checkpoint" in s]
    qiao_clock.advance(minutes=audit_log.settings.checkpoint_minutes + 1)
    with count_statements(qiao_runtime.db.engine) as seen:
        accounts(1)
    assert [s for s in seen.statements if "qiao_audit_checkpoint" in s]
    assert file_sequences(checkpoint_file) == [1, 4]


def test_an_idle_tail_is_checkpointed_by_the_periodic_call(
    accounts, audit_log, qiao_runtime, qiao_clock, checkpoint_file
):
    accounts(2)
    with qiao_runtime.db.write() as conn:
        assert audit_log.checkpoint_if_due(conn) is None  # the last checkpoint is fresh
    qiao_clock.advance(minutes=audit_log.settings.checkpoint_minutes)
    with qiao_runtime.db.write() as conn:
        assert audit_log.checkpoint_if_due(conn).sequence == 2
    with qiao_runtime.db.write() as conn:
        assert audit_log.checkpoint_if_due(conn) is None  # nothing new since
    assert file_sequences(checkpoint_file) == [1, 2]


def test_a_rolled_back_write_leaves_no_checkpoint_in_the_file(
    accounts, audit_log, qiao_runtime, checkpoint_file
):
    accounts(CHECKPOINT_EVERY - 1)
    records = qiao_runtime.records
    with pytest.raises(RuntimeError), records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "account", {"name": "回滚"})  # entry 5 would be checkpointed
        raise RuntimeError("rolled back")
    assert file_sequences(checkpoint_file) == [1]
    assert verify(qiao_runtime, audit_log).ok


def test_the_key_is_made_once(audit_log, qiao_runtime):
    with qiao_runtime.db.write() as conn, pytest.raises(Conflict, match="has its key already"):
        audit_log.create_key(conn)


def test_a_checkpoint_file_that_cannot_be_written_fails_no_committed_write(
    accounts, audit_log, qiao_runtime, tmp_path, caplog
):
    audit_log.settings = dataclasses.replace(
        audit_log.settings, checkpoint_file=tmp_path / "no such folder" / "checkpoints.jsonl"
    )
    (made,) = accounts(1)  # entry 1 is checkpointed: the file cannot be appended to
    with qiao_runtime.db.read() as conn:
        assert (
            qiao_runtime.records.get(conn, "account", made["id"], actor=Actor.system()) is not None
        )
    assert "an action after a committed transaction failed" in caplog.text
