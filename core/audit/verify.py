"""Verifying the audit chain: every entry, in order, against its keyed MAC.

Each kind of tampering shows as a specific break, named at the first entry
where it shows:

- an altered entry (any field, or its MAC) no longer verifies;
- a forged entry, even with a plain hash chain recomputed, does not verify
  without the key;
- two entries swapped each claim a place whose MAC they do not have;
- a deleted entry leaves a gap in the sequence numbers;
- entries deleted from the end leave the chain head, a stored checkpoint or an
  exported one (``--from-checkpoint``) naming entries that are not there. An
  attacker who can also rewrite the head and the stored checkpoints is caught
  by the checkpoint file kept outside the database (:mod:`.anchor`): its latest
  checkpoint names entries, a MAC and a key the log must still hold.

Entries may be missing from the start only where a prune recorded in the
chain removed them, starting from the checkpoint it stored.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from qiao.core.audit.chain import GENESIS_MAC, Checkpoint, Entry, checkpoint_signature, entry_mac
from qiao.core.errors import ConfigurationError
from qiao.core.storage import system

KeyFor = Callable[[str], bytes]
_BATCH = 1000
_PRUNE = "audit.prune"


class UnknownKey(ConfigurationError):
    """An entry or checkpoint names an audit key the database does not hold."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"the audit key {key_id!r} is not in the database")
        self.key_id = key_id


@dataclass(frozen=True)
class Problem:
    """The first entry that does not verify, and why."""

    sequence: int
    reason: str

    def __str__(self) -> str:
        return f"entry {self.sequence} {self.reason}"


@dataclass(frozen=True)
class Report:
    """What was checked: entries ``first`` to ``last``, and the first problem if any."""

    first: int
    last: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def count(self) -> int:
        return max(0, self.last - self.first + 1)


def verify(
    conn: Connection,
    key_for: KeyFor,
    anchor: Checkpoint | None = None,
    external: Checkpoint | None = None,
) -> Report:
    """Check the chain from its start, or from ``anchor`` (a checkpoint kept elsewhere).

    ``external`` is the latest checkpoint of the checkpoint file: the chain
    must reach it and agree with it.

    Only entries committed when the chain head was read are checked, so
    writers appending meanwhile do not disturb the result.
    """
    # Checkpoints first: each is stored with the head at or past it, so one beyond
    # the head read next means the head was moved back.
    checkpoints = _stored_checkpoints(conn)
    head = conn.execute(select(system.audit_head).where(system.audit_head.c.id == 1)).one()
    start, previous, problem, anchored = _start(conn, key_for, anchor, checkpoints)
    if problem is None and external is not None:
        problem = _signature_problem(external, key_for, "the checkpoint file")
    if problem is not None:
        return Report(start + 1, start, problem)
    remember = set(checkpoints) | ({external.sequence} if external else set())
    walk = _Walk(conn, key_for, start, previous, remember)
    problem = walk.run(head.sequence)
    last = walk.last
    if problem is None:
        problem = _check_end(head.sequence, head.mac, walk, checkpoints, key_for)
    if problem is None and external is not None:
        problem = _check_external(external, walk, start)
    if problem is None and not anchored and start > 0 and walk.pruned_through != start:
        problem = Problem(
            walk.pruned_through + 1,
            f"is missing, with every entry up to {start}, and no prune recorded in the log "
            "removed them",
        )
    return Report(start + 1, last, problem)


def _stored_checkpoints(conn: Connection) -> dict[int, Checkpoint]:
    table = system.audit_checkpoint
    rows = conn.execute(select(table).order_by(table.c.sequence))
    return {row.sequence: Checkpoint(**row._mapping) for row in rows}


def _start(
    conn: Connection, key_for: KeyFor, anchor: Checkpoint | None, stored: dict[int, Checkpoint]
) -> tuple[int, bytes, Problem | None, bool]:
    """Where the walk begins: the sequence before its first entry, and that entry's MAC.

    The last item says whether the walk begins at ``anchor``; an anchor older than
    the oldest entry kept (pruned since) leaves the start to the stored checkpoints.
    """
    entries = system.audit_entry
    first = conn.execute(select(func.min(entries.c.sequence))).scalar() or 1
    if anchor is not None:
        problem = _signature_problem(anchor, key_for, "the exported checkpoint")
        if problem is not None:
            return anchor.sequence, GENESIS_MAC, problem, True
        if anchor.sequence >= first - 1:
            stored_mac = conn.execute(
                select(entries.c.mac).where(entries.c.sequence == anchor.sequence)
            ).scalar()
            if stored_mac is None and anchor.sequence >= first:
                last = conn.execute(select(func.max(entries.c.sequence))).scalar() or 0
                problem = Problem(
                    last + 1,
                    "is missing: the exported checkpoint vouches for entries up to "
                    f"{anchor.sequence}",
                )
            elif stored_mac is not None and stored_mac != anchor.mac:
                problem = Problem(anchor.sequence, "differs from the exported checkpoint")
            return anchor.sequence, bytes.fromhex(anchor.mac), problem, True
    if first == 1:
        return 0, GENESIS_MAC, None, False
    # A prune leaves a checkpoint at the last entry it removed; start from the latest
    # one, and let the walk name any entry missing after it.
    below = [sequence for sequence in stored if sequence < first]
    if not below:
        reason = f"is missing, with every entry up to {first - 1}, and no checkpoint covers them"
        return 0, GENESIS_MAC, Problem(1, reason), False
    checkpoint = stored[max(below)]
    problem = _signature_problem(checkpoint, key_for, "the stored checkpoint")
    return checkpoint.sequence, bytes.fromhex(checkpoint.mac), problem, False


class _Walk:
    """Reads entries in sequence order, in batches, and checks each MAC."""

    def __init__(
        self,
        conn: Connection,
        key_for: KeyFor,
        start: int,
        previous: bytes,
        remember: set[int],
    ) -> None:
        self.conn = conn
        self.key_for = key_for
        self.last = start
        self.previous = previous
        self.previous_at_start = previous.hex()
        self.remember = remember
        #: The MAC of each entry a checkpoint names, to compare with the checkpoint.
        self.macs: dict[int, str] = {}
        self.pruned_through = 0

    def run(self, up_to: int) -> Problem | None:
        entries = system.audit_entry
        while True:
            rows = self.conn.execute(
                select(entries)
                .where(entries.c.sequence > self.last, entries.c.sequence <= up_to)
                .order_by(entries.c.sequence)
                .limit(_BATCH)
            ).all()
            for row in rows:
                problem = self._check(Entry.of(row._mapping))
                if problem is not None:
                    return problem
            if len(rows) < _BATCH:
                return None

    def _check(self, entry: Entry) -> Problem | None:
        expected = self.last + 1
        if entry.sequence != expected:
            return Problem(
                expected,
                f"is missing (entry {self.last} is followed by entry {entry.sequence})",
            )
        try:
            key = self.key_for(entry.key_id)
        except UnknownKey:
            return Problem(
                entry.sequence, f"names the audit key {entry.key_id!r}, which is unknown"
            )
        mac = entry_mac(key, self.previous, entry)
        if not hmac.compare_digest(mac.hex(), entry.mac):
            return Problem(
                entry.sequence,
                "does not verify: it was altered, forged, or moved from another place in the log",
            )
        if entry.operation == _PRUNE:
            self.pruned_through = max(
                self.pruned_through, int(json.loads(entry.changes)["through"])
            )
        if entry.sequence in self.remember:
            self.macs[entry.sequence] = entry.mac
        self.last = entry.sequence
        self.previous = mac
        return None


def _check_end(
    head_sequence: int,
    head_mac: str,
    walk: _Walk,
    stored: dict[int, Checkpoint],
    key_for: KeyFor,
) -> Problem | None:
    """Entries deleted from the end show against the head and against checkpoints."""
    last = walk.last
    if head_sequence > last:
        return Problem(
            last + 1,
            f"is missing: the log ends at entry {last}, but its head records "
            f"{head_sequence} entries",
        )
    if last > 0 and head_mac != walk.previous.hex():
        return Problem(last, "does not match the chain head's MAC")
    beyond = [s for s in stored if s > last]
    if beyond:
        return Problem(
            last + 1,
            f"is missing: the log ends at entry {last}, but a stored checkpoint vouches for "
            f"entries up to {max(beyond)}",
        )
    for sequence, checkpoint in stored.items():
        if sequence not in walk.macs:
            continue
        problem = _signature_problem(checkpoint, key_for, "the stored checkpoint")
        if problem is not None:
            return problem
        if walk.macs[sequence] != checkpoint.mac:
            return Problem(sequence, "differs from the checkpoint stored for it")
    return None


def _check_external(external: Checkpoint, walk: _Walk, start: int) -> Problem | None:
    """The chain must reach the checkpoint file's latest checkpoint, with the same MAC.

    A checkpoint older than the walk's start (entries pruned since) says nothing more.
    """
    if external.sequence > walk.last:
        return Problem(
            walk.last + 1,
            f"is missing: the log ends at entry {walk.last}, but the checkpoint file vouches "
            f"for entries up to {external.sequence}",
        )
    if external.sequence in walk.macs and walk.macs[external.sequence] != external.mac:
        return Problem(external.sequence, "differs from the checkpoint file")
    if external.sequence == start and walk.previous_at_start != external.mac:
        return Problem(external.sequence, "differs from the checkpoint file")
    return None


def _signature_problem(checkpoint: Checkpoint, key_for: KeyFor, what: str) -> Problem | None:
    try:
        key = key_for(checkpoint.key_id)
    except UnknownKey:
        return Problem(checkpoint.sequence, f"is named by {what}, whose audit key is unknown")
    if not hmac.compare_digest(checkpoint_signature(key, checkpoint), checkpoint.signature):
        return Problem(
            checkpoint.sequence,
            f"is named by {what}, which the audit key did not sign (altered or forged)",
        )
    return None
