"""Tampering with the audit log, as someone with write access to the database would.

Each test changes the tables directly (raw SQL, below Qiao) and expects
verification to name the first entry that no longer verifies, and why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from sqlalchemy import delete, insert, text, update

from qiao.core.audit import Checkpoint, Entry
from qiao.core.audit.chain import GENESIS_MAC, entry_mac
from qiao.core.crypto import hmac_sm3
from qiao.core.storage import system

ENTRIES = 7  # with checkpoints every 5: one stored checkpoint, at entry 5


@pytest.fixture
def logged(accounts, entries):
    """Seven entries, as stored before any tampering."""
    accounts(ENTRIES)
    return entries()


@pytest.fixture
def sql(qiao_runtime):
    """``sql(statement, **params)`` in its own committed transaction."""

    def _sql(statement, **params):
        with qiao_runtime.db.write() as conn:
            if isinstance(statement, str):
                statement = text(statement)
            conn.execute(statement, params)

    return _sql


@pytest.fixture
def verify(qiao_runtime, audit_log):
    def _verify(anchor=None, external=True):
        with qiao_runtime.db.read() as conn:
            return audit_log.verify(conn, anchor, external=external)

    return _verify


def _put(sql, entry: Entry) -> None:
    sql(insert(system.audit_entry).values(**entry.__dict__))


def _move_head(sql, entry: Entry) -> None:
    sql(update(system.audit_head).values(sequence=entry.sequence, mac=entry.mac))


def test_an_untouched_log_verifies(logged, verify):
    report = verify()
    assert (report.ok, report.first, report.last, report.count) == (True, 1, ENTRIES, ENTRIES)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("changes", '{"name":{"new":"改过的名称","old":null}}'),
        ("actor", "admin"),
        ("source", "graphql"),
        ("request_id", "someone-else"),
        ("operation", "delete"),
        ("record_id", "0193a2b4-0000-7000-8000-00000000dead"),
        ("mac", "ab" * 32),
    ],
)
def test_an_altered_field_is_named(logged, sql, verify, column, value):
    sql(f"UPDATE qiao_audit_entry SET {column} = :value WHERE sequence = 3", value=value)
    report = verify()
    assert report.problem is not None
    assert report.problem.sequence == 3
    assert "does not verify" in report.problem.reason


def test_an_altered_time_is_named(logged, sql, verify):
    moved = logged[3].at - dt.timedelta(days=1)
    sql(update(system.audit_entry).where(system.audit_entry.c.sequence == 4).values(at=moved))
    assert verify().problem.sequence == 4


def test_a_deleted_entry_is_named(logged, sql, verify):
    sql("DELETE FROM qiao_audit_entry WHERE sequence = 4")
    problem = verify().problem
    assert (problem.sequence, problem.reason) == (
        4,
        "is missing (entry 3 is followed by entry 5)",
    )
    assert str(problem) == "entry 4 is missing (entry 3 is followed by entry 5)"


def test_the_last_entry_deleted_is_named_by_the_head(logged, sql, verify):
    sql("DELETE FROM qiao_audit_entry WHERE sequence = :s", s=ENTRIES)
    problem = verify().problem
    assert problem.sequence == ENTRIES
    assert "head records 7 entries" in problem.reason


def test_entries_cut_below_a_stored_checkpoint_are_named(logged, sql, verify):
    sql("DELETE FROM qiao_audit_entry WHERE sequence >= 5")
    _move_head(sql, logged[3])
    problem = verify().problem
    assert problem.sequence == 5
    assert "stored checkpoint vouches for entries up to 5" in problem.reason


def test_a_cut_end_with_head_and_checkpoints_rewritten_is_named_by_an_exported_checkpoint(
    logged, sql, verify, qiao_runtime, audit_log
):
    with qiao_runtime.db.write() as conn:
        exported = audit_log.checkpoint(conn)
    assert exported.sequence == ENTRIES
    sql("DELETE FROM qiao_audit_entry WHERE sequence >= 6")
    sql("DELETE FROM qiao_audit_checkpoint WHERE sequence >= 6")
    _move_head(sql, logged[4])
    assert verify(external=False).ok  # inside the database, nothing shows
    problem = verify(exported, external=False).problem
    assert problem.sequence == 6
    assert "exported checkpoint vouches for entries up to 7" in problem.reason
    # The checkpoint file beside the deployment caught it without being asked.
    assert "checkpoint file vouches for entries up to 7" in verify().problem.reason


def test_a_forged_entry_with_a_recomputed_plain_hash_chain_is_named(logged, sql, verify):
    """An attacker appends an entry and recomputes the chain as a plain SHA-256 chain."""
    last = logged[-1]
    forged = dataclasses.replace(
        last,
        sequence=last.sequence + 1,
        request_id="forged",
        changes='{"name":{"new":"伪造","old":null}}',
    )
    mac = hashlib.sha256(bytes.fromhex(last.mac) + forged.canonical()).hexdigest()
    forged = dataclasses.replace(forged, mac=mac)
    _put(sql, forged)
    _move_head(sql, forged)
    problem = verify().problem
    assert problem.sequence == ENTRIES + 1
    assert "does not verify" in problem.reason


def test_an_entry_inserted_in_the_middle_with_a_guessed_key_is_named(logged, sql, verify):
    """Entries 4.. are renumbered to make room, and every MAC after is recomputed."""
    guessed_key = b"k" * 32
    sql("DELETE FROM qiao_audit_entry WHERE sequence >= 4")
    forged = dataclasses.replace(logged[3], request_id="forged", changes="{}")
    rewritten = [forged] + [dataclasses.replace(e, sequence=e.sequence + 1) for e in logged[3:]]
    previous = bytes.fromhex(logged[2].mac)
    for position, entry in enumerate(rewritten, start=4):
        entry = dataclasses.replace(entry, sequence=position)
        previous = hmac_sm3(guessed_key, previous + entry.canonical())
        entry = dataclasses.replace(entry, mac=previous.hex())
        _put(sql, entry)
    _move_head(sql, entry)
    sql("DELETE FROM qiao_audit_checkpoint")
    problem = verify().problem
    assert problem.sequence == 4
    assert "does not verify" in problem.reason


def test_a_forged_entry_under_an_unknown_key_is_named(logged, sql, verify):
    last = logged[-1]
    forged = dataclasses.replace(last, sequence=last.sequence + 1, key_id="audit-9")
    _put(sql, forged)
    _move_head(sql, forged)
    problem = verify().problem
    assert problem.sequence == ENTRIES + 1
    assert "'audit-9', which is unknown" in problem.reason


@pytest.mark.parametrize("with_macs", [False, True], ids=["contents", "whole-rows"])
def test_two_entries_swapped_are_named(logged, sql, verify, with_macs):
    third, fourth = logged[2], logged[3]
    sql("DELETE FROM qiao_audit_entry WHERE sequence IN (3, 4)")
    if with_macs:  # the rows keep their MACs and trade places
        _put(sql, dataclasses.replace(fourth, sequence=3))
        _put(sql, dataclasses.replace(third, sequence=4))
    else:  # the contents trade places, each place keeps its MAC
        _put(sql, dataclasses.replace(fourth, sequence=3, mac=third.mac))
        _put(sql, dataclasses.replace(third, sequence=4, mac=fourth.mac))
    problem = verify().problem
    assert problem.sequence == 3
    assert "does not verify" in problem.reason


def test_an_altered_stored_checkpoint_is_named(logged, sql, verify):
    sql("UPDATE qiao_audit_checkpoint SET mac = :mac WHERE sequence = 5", mac=logged[1].mac)
    problem = verify().problem
    assert problem.sequence == 5
    assert "did not sign" in problem.reason


def test_verification_from_an_exported_checkpoint(logged, verify, qiao_runtime, audit_log):
    with qiao_runtime.db.write() as conn:
        anchor = audit_log.checkpoint(conn)
    report = verify(Checkpoint.from_export(anchor.export()))
    assert (report.ok, report.first, report.last) == (True, ENTRIES + 1, ENTRIES)


def test_an_exported_checkpoint_that_was_edited_is_refused(logged, verify, qiao_runtime, audit_log):
    with qiao_runtime.db.write() as conn:
        anchor = audit_log.checkpoint(conn)
    edited = dataclasses.replace(anchor, sequence=anchor.sequence + 10)
    problem = verify(edited).problem
    assert problem.sequence == anchor.sequence + 10
    assert "exported checkpoint, which the audit key did not sign" in problem.reason


def test_an_entry_that_differs_from_an_exported_checkpoint_is_named(
    logged, sql, verify, qiao_runtime, audit_log
):
    with qiao_runtime.db.write() as conn:
        anchor = audit_log.checkpoint(conn)
    sql("UPDATE qiao_audit_entry SET mac = :mac WHERE sequence = :s", mac="0" * 64, s=ENTRIES)
    problem = verify(anchor).problem
    assert (problem.sequence, problem.reason) == (ENTRIES, "differs from the exported checkpoint")


def test_the_mac_covers_the_previous_mac(logged, audit_log, qiao_runtime):
    """Entry 1 follows 32 zero bytes; entry n follows entry n-1's MAC."""
    with qiao_runtime.db.read() as conn:
        key = audit_log.key(conn, "audit-1")
    assert entry_mac(key, GENESIS_MAC, logged[0]).hex() == logged[0].mac
    assert entry_mac(key, bytes.fromhex(logged[0].mac), logged[1]).hex() == logged[1].mac
    assert entry_mac(key, GENESIS_MAC, logged[1]).hex() != logged[1].mac


def test_an_empty_log_verifies(verify, audit_log):
    report = verify()
    assert (report.ok, report.count) == (True, 0)


def test_deleting_every_entry_is_named(logged, sql, verify):
    sql(delete(system.audit_entry))
    sql(delete(system.audit_checkpoint))
    problem = verify().problem
    assert problem.sequence == 1
    assert "head records 7 entries" in problem.reason
