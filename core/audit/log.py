"""Appending to the audit log, checkpointing it and pruning it.

Every entry is appended inside the transaction of the change it records, so
the entry and the change commit or roll back together. A transaction's
entries are chained just before it commits: then the chain's head row is
locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), the entries inserted after it and the head
moved, and the commit releases the lock. Concurrent writers so get
consecutive sequence numbers in commit order, each MAC covers its true
predecessor, and the head is held for one insert and the commit rather than
the whole transaction. Holding it last also keeps one lock order: a
transaction holding the head waits for no other lock.

A process finds its :class:`AuditLog` through the database engine it writes
with: :func:`bind` attaches one to a runtime's engine. A process without the
key must not write to a database whose log is keyed, or its changes would go
unrecorded; :func:`record` refuses that.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from qiao.core.audit import verify as verification
from qiao.core.audit.anchor import CheckpointFile
from qiao.core.audit.chain import (
    Checkpoint,
    Entry,
    canonical_json,
    checkpoint_signature,
    entry_mac,
    instant,
)
from qiao.core.config.audit import AuditSettings
from qiao.core.crypto.errors import KeyUnavailableError
from qiao.core.crypto.keys import KeyProvider
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.metadata.model import EntityDef, FieldDef
from qiao.core.records.changes import has_key
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.redaction import (
    is_hidden,
    is_redacted_change,
    redacted_change,
    redacted_changes,
)
from qiao.core.storage import system
from qiao.core.storage.database import after_commit, kept_until_commit, take_kept

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.audit")

#: Decides whether a field's values stay out of the log (only the fact that it changed is kept).
Redact = Callable[[EntityDef, FieldDef], bool]
Clock = Callable[[], dt.datetime]

PRUNE = "audit.prune"
LOGIN_SUCCEEDED = "login.success"
LOGIN_FAILED = "login.failure"
_KEY_SIZE = 32
_FIRST_KEY_ID = "audit-1"
#: Where a write transaction keeps the events it appended until it commits.
_PENDING = "audit.pending"


def is_encrypted(entity: EntityDef, field: FieldDef) -> bool:
    """Fields stored encrypted are redacted: the log must not hold their plain values."""
    return is_hidden(field)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AuditEvent:
    """What happened, by whom, through which door: everything an entry records but its place."""

    actor: Actor
    source: str
    request_id: str
    operation: str
    entity: str | None = None
    record_id: str | None = None
    changes: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Pruned:
    """What a prune removed, and the checkpoint verification now starts from."""

    first: int
    through: int
    checkpoint: Checkpoint


class AuditLog:
    """One deployment's audit log, holding the provider that unwraps its key."""

    def __init__(
        self,
        provider: KeyProvider,
        settings: AuditSettings,
        *,
        clock: Clock = utcnow,
        redact: Redact = is_encrypted,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.clock = clock
        self.redact = redact
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()
        #: The time of the newest checkpoint this process saw committed. Checkpoints are
        #: only ever added, so while it is recent no write needs to ask the database.
        self._checkpointed_at: dt.datetime | None = None

    # -- Appending ------------------------------------------------------------------------

    def append(self, conn: Connection, event: AuditEvent) -> None:
        """Add ``event`` at the end of the chain when the caller's transaction commits.

        A log without a key refuses: the key is made once, with the kernel tables
        (``qiao init``) or by ``qiao audit init-key`` (:meth:`create_key`), never by
        a write, so a log erased together with its key cannot quietly start over.
        """
        self.append_many(conn, [event])

    def append_many(self, conn: Connection, events: Sequence[AuditEvent]) -> None:
        """Add ``events`` at the end of the chain, in order, when the transaction commits.

        Inside a :meth:`~qiao.core.storage.database.Database.write` transaction the
        events wait, and :meth:`flush` chains every event of the transaction just
        before it commits: the head is locked for one insert, one update and the
        commit, not for the whole transaction, and a transaction rolled back
        leaves no entry and no hole. Elsewhere (a bare connection) they are
        chained at once.
        """
        if not events:
            return
        pending = kept_until_commit(conn, _PENDING, lambda kept: self._chain(conn, kept))
        if pending is None:
            self._chain(conn, events)
        else:
            pending.extend(events)

    def flush(self, conn: Connection) -> list[Entry]:
        """Chain the events the transaction of ``conn`` appended so far; returns their entries.

        Runs just before commit; :meth:`checkpoint` calls it first, so a
        checkpoint covers the transaction's own entries.
        """
        pending = take_kept(conn, _PENDING)
        return self._chain(conn, pending) if pending else []

    def _chain(self, conn: Connection, events: Sequence[AuditEvent]) -> list[Entry]:
        """Lock the head, number and MAC ``events`` after it, and store them in one insert."""
        head = _lock_head(conn)
        key_id = head["key_id"]
        if key_id is None:
            raise ConfigurationError(
                "the audit log has no key, so nothing can be recorded; make it with "
                "'qiao audit init-key' (docs/audit.md)"
            )
        key = self.key(conn, key_id)
        sequence, mac = head["sequence"], head["mac"]
        entries = []
        for event in events:
            sequence += 1
            entry = Entry(
                sequence=sequence,
                at=self.clock(),
                key_id=key_id,
                actor_id=event.actor.user_id,
                actor=event.actor.username,
                source=str(event.source),
                request_id=event.request_id,
                operation=event.operation,
                entity=event.entity,
                record_id=event.record_id,
                changes=canonical_json(dict(event.changes or {})),
                mac="",
            )
            entry = replace(entry, mac=entry_mac(key, bytes.fromhex(mac), entry).hex())
            mac = entry.mac
            entries.append(entry)
        conn.execute(insert(system.audit_entry), [dict(e.__dict__) for e in entries])
        conn.execute(
            update(system.audit_head)
            .where(system.audit_head.c.id == 1)
            .values(sequence=sequence, mac=mac, key_id=key_id)
        )
        every = self.settings.checkpoint_every
        for entry in entries:
            if entry.sequence % every == 0:
                self._store_checkpoint(conn, entry.sequence, entry.mac, key_id)
        last = entries[-1]
        if last.sequence % every != 0 and self._checkpoint_due(conn):
            self._store_checkpoint(conn, last.sequence, last.mac, key_id)
        return entries

    def record_writes(
        self,
        context: WriteContext,
        entity: EntityDef,
        operation: str,
        records: Sequence[Mapping[str, Any]],
        changes: Sequence[Mapping[str, tuple[Any, Any]]],
    ) -> None:
        """Records' creates, updates or deletes, one entry per record, field by field,
        redacted where required; appended together (:meth:`append_many`)."""
        events = [
            AuditEvent(
                actor=context.actor,
                source=context.source,
                request_id=context.request_id,
                operation=operation,
                entity=entity.name,
                record_id=str(record["id"]),
                changes=self._fields(context, entity, changed),
            )
            for record, changed in zip(records, changes, strict=True)
        ]
        self.append_many(context.connection, events)

    def _fields(
        self, context: WriteContext, entity: EntityDef, changes: Mapping[str, tuple[Any, Any]]
    ) -> dict[str, Any]:
        """A write's changes as an entry keeps them, redacted where required."""
        fields: dict[str, Any] = {}
        erasing = context.source is Source.ERASURE  # the log must not keep what was erased
        for name, change in redacted_changes(entity, changes).items():
            field = entity.field(name)
            hidden = erasing or (field is not None and self.redact(entity, field))
            if hidden or is_redacted_change(change):
                fields[name] = redacted_change()
            else:
                fields[name] = {"old": change[0], "new": change[1]}
        return fields

    # -- Checkpoints and pruning ----------------------------------------------------------

    def checkpoint(self, conn: Connection) -> Checkpoint:
        """A signed checkpoint of the chain as it is now (stored; the same one if unchanged)."""
        self.flush(conn)
        head = _lock_head(conn)
        if head["sequence"] == 0:
            raise Conflict("the audit log is empty; there is nothing to checkpoint yet")
        return self._store_checkpoint(conn, head["sequence"], head["mac"], head["key_id"])

    def checkpoint_if_due(self, conn: Connection) -> Checkpoint | None:
        """A checkpoint of entries written since the last one, once it is old enough.

        The server calls this periodically, so the last entries before a quiet
        spell are anchored outside the database too.
        """
        head = _lock_head(conn)
        latest = _latest_checkpoint(conn)
        behind = head["sequence"] > (latest.sequence if latest else 0)
        if not behind or not self._checkpoint_due(conn, latest):
            return None
        return self._store_checkpoint(conn, head["sequence"], head["mac"], head["key_id"])

    def _checkpoint_due(self, conn: Connection, latest: Checkpoint | None = None) -> bool:
        """Whether the last checkpoint is older than the configured interval; a write asks
        the database only once the newest checkpoint this process knows of is that old."""
        interval = dt.timedelta(minutes=self.settings.checkpoint_minutes)
        now = self.clock()
        known = self._checkpointed_at
        if latest is None and known is not None and now - known < interval:
            return False
        latest = latest or _latest_checkpoint(conn)
        if latest is None:
            return True
        self._saw_checkpoint(conn, latest)
        return now - latest.at >= interval

    def _saw_checkpoint(self, conn: Connection, checkpoint: Checkpoint) -> None:
        """Remember ``checkpoint`` once the transaction that read or stored it commits."""

        def remember() -> None:
            known = self._checkpointed_at
            if known is None or checkpoint.at > known:
                self._checkpointed_at = checkpoint.at

        after_commit(conn, remember)

    @property
    def checkpoint_file(self) -> CheckpointFile | None:
        path = self.settings.checkpoint_file
        return CheckpointFile(path) if path is not None else None

    def prune(self, conn: Connection, actor: Actor, source: str, request_id: str) -> Pruned | None:
        """Remove the entries older than the retention period, keeping the chain verifiable.

        The log is verified first, so tampered entries are never pruned away; then a
        checkpoint is stored at the last entry removed, the entries are deleted, and
        the prune itself is appended to the log. Returns None when nothing is old enough.
        """
        _lock_head(conn)
        report = self.verify(conn)
        if report.problem is not None:
            raise Conflict(
                f"the audit log does not verify ({report.problem}); nothing was pruned, "
                "so the evidence stays"
            )
        entries = system.audit_entry
        cutoff = self.clock() - dt.timedelta(days=self.settings.retention_days)
        first = conn.execute(select(func.min(entries.c.sequence))).scalar()
        young = conn.execute(
            select(func.min(entries.c.sequence)).where(entries.c.at >= cutoff)
        ).scalar()
        through = (young - 1) if young is not None else report.last
        if first is None or through is None or through < first:
            return None
        last_pruned = conn.execute(
            select(entries.c.mac, entries.c.key_id).where(entries.c.sequence == through)
        ).one()
        checkpoint = self._store_checkpoint(conn, through, last_pruned.mac, last_pruned.key_id)
        conn.execute(delete(entries).where(entries.c.sequence <= through))
        checkpoints = system.audit_checkpoint
        conn.execute(delete(checkpoints).where(checkpoints.c.sequence < through))
        details = {
            "first": first,
            "through": through,
            "cutoff": instant(cutoff),
            "retention_days": self.settings.retention_days,
        }
        self.append(conn, AuditEvent(actor, source, request_id, PRUNE, changes=details))
        return Pruned(first=first, through=through, checkpoint=checkpoint)

    def verify(
        self, conn: Connection, anchor: Checkpoint | None = None, *, external: bool = True
    ) -> verification.Report:
        """Check the whole chain (from ``anchor``, a checkpoint kept elsewhere, if given).

        With ``external`` the latest checkpoint of the checkpoint file must be
        met too: the log must still reach it, with the same MAC and key.
        """
        file = self.checkpoint_file if external else None
        latest = file.latest() if file is not None else None
        return verification.verify(conn, lambda key_id: self.key(conn, key_id), anchor, latest)

    # -- Keys -----------------------------------------------------------------------------

    def key(self, conn: Connection, key_id: str) -> bytes:
        """The MAC key ``key_id``, unwrapped by the provider once per process."""
        with self._lock:
            if key_id in self._keys:
                return self._keys[key_id]
        table = system.audit_key
        wrapped = conn.execute(select(table.c.wrapped).where(table.c.id == key_id)).scalar()
        if wrapped is None:
            raise verification.UnknownKey(key_id)
        try:
            secret = self.provider.unwrap(wrapped)
        except KeyUnavailableError as exc:
            log.error("the audit key %s cannot be unwrapped: %s", key_id, exc)
            raise ConfigurationError(
                "the audit log's key cannot be unwrapped with the configured key provider; "
                "the server log says why"
            ) from None
        with self._lock:
            self._keys[key_id] = secret
        return secret

    def create_key(self, conn: Connection) -> str:
        """Make the log's MAC key and store it wrapped; done once, by an administrator.

        Refused when the log has a key, and when the checkpoint file vouches for
        entries already: a log erased with its key must not start over unnoticed.
        """
        head = _lock_head(conn)
        if head["key_id"] is not None:
            raise Conflict(f"the audit log has its key already ({head['key_id']})")
        file = self.checkpoint_file
        latest = file.latest() if file is not None else None
        if latest is not None:
            raise Conflict(
                f"the checkpoint file {file.path} vouches for {latest.sequence} entries of a log "
                "that had a key: the audit log or its key was erased. Restore the database; "
                "only to start a new log on purpose, move that file aside first"
            )
        secret = os.urandom(_KEY_SIZE)
        conn.execute(
            insert(system.audit_key).values(
                id=_FIRST_KEY_ID,
                kek_id=self.provider.kek_id,
                wrapped=self.provider.wrap(secret),
                created_at=self.clock(),
            )
        )
        head_row = system.audit_head.c.id == 1
        conn.execute(update(system.audit_head).where(head_row).values(key_id=_FIRST_KEY_ID))
        with self._lock:
            self._keys[_FIRST_KEY_ID] = secret
        return _FIRST_KEY_ID

    def _store_checkpoint(
        self, conn: Connection, sequence: int, mac: str, key_id: str
    ) -> Checkpoint:
        table = system.audit_checkpoint
        row = conn.execute(select(table).where(table.c.sequence == sequence)).first()
        if row is not None:
            checkpoint = Checkpoint(**row._mapping)
        else:
            unsigned = Checkpoint(sequence, mac, self.clock(), key_id, signature="")
            checkpoint = replace(
                unsigned, signature=checkpoint_signature(self.key(conn, key_id), unsigned)
            )
            conn.execute(insert(table).values(**checkpoint.__dict__))
        self._saw_checkpoint(conn, checkpoint)
        file = self.checkpoint_file
        if file is not None:
            after_commit(conn, lambda: file.append(checkpoint))
        return checkpoint


# -- Finding a process's audit log ----------------------------------------------------------

_bound: weakref.WeakKeyDictionary[Engine, AuditLog] = weakref.WeakKeyDictionary()


def bind(runtime: Runtime) -> AuditLog | None:
    """Attach an audit log to ``runtime``'s database; None when no audit key is configured.

    A configured key file that is missing or unsafe raises, naming it, so the
    process does not start without its audit key.
    """
    try:
        provider = runtime.config.audit.key_provider()
    except KeyUnavailableError as exc:
        raise ConfigurationError(f"the audit key provider cannot be used: {exc}") from None
    if provider is None:
        log.warning(
            "no audit key is configured ([audit] key_file in qiao.toml, or QIAO_KEK for "
            "development): changes are not recorded in the audit log"
        )
        return None
    audit = AuditLog(provider, runtime.config.audit, clock=runtime.records.clock)
    _bound[runtime.db.engine] = audit
    return audit


def bound(runtime: Runtime) -> AuditLog | None:
    """The audit log :func:`bind` attached to ``runtime``'s database, if any."""
    return _bound.get(runtime.db.engine)


def log_for(conn: Connection) -> AuditLog | None:
    """The audit log bound to the engine ``conn`` belongs to."""
    return _bound.get(conn.engine)


def record(
    conn: Connection,
    *,
    actor: Actor,
    source: Source | str,
    request_id: str,
    operation: str,
    entity: str | None = None,
    record_id: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """Record an event in the audit log, inside the caller's transaction on ``conn``.

    For changes that do not go through the records service: metadata changes
    (``operation="metadata.add_field"`` ...), permission changes, logins.
    Writes nothing only where the database has never been audited and this
    process has no key; a keyed database refuses the change.
    """
    event = AuditEvent(actor, str(source), request_id, operation, entity, record_id, changes)
    audit = log_for(conn)
    if audit is None:
        refuse_if_keyed(conn)
        return
    audit.append(conn, event)


def record_login(
    conn: Connection,
    *,
    username: str,
    user_id: str | None,
    succeeded: bool,
    source: Source | str,
    request_id: str,
    reason: str | None = None,
) -> None:
    """Record a sign-in attempt; ``user_id`` is the account's, when one has that name.

    A failed attempt is recorded with no acting user (nobody was authenticated)
    and the name that was tried, so repeated failures against one account show.
    """
    actor = Actor(user_id=user_id if succeeded else None, username=username)
    record(
        conn,
        actor=actor,
        source=source,
        request_id=request_id,
        operation=LOGIN_SUCCEEDED if succeeded else LOGIN_FAILED,
        entity="user",
        record_id=user_id,
        changes={"username": username, **({"reason": reason} if reason else {})},
    )


def record_security(
    conn: Connection,
    operation: str,
    *,
    user_id: str,
    details: Mapping[str, Any],
    actor: Actor | None = None,
    source: Source | str = Source.SYSTEM,
) -> None:
    """Record a token, password or key operation in the trail of the user it concerns.

    Such entries are security events: only auditors and that user read them
    (:mod:`qiao.core.audit.trail`).
    """
    record(
        conn,
        actor=actor or Actor.system(),
        source=source,
        request_id=uuid.uuid4().hex,
        operation=operation,
        entity="user",
        record_id=user_id,
        changes=details,
    )


def refuse_if_keyed(conn: Connection) -> None:
    """Refuse a change by a process without the audit key to a database whose log is keyed."""
    if has_key(conn):
        raise ConfigurationError(
            "this deployment keeps an audit log, but this process has no audit key; "
            "configure [audit] key_file in qiao.toml (docs/audit.md)"
        )


def initialize(runtime: Runtime, *, existing_ok: bool = False) -> str | None:
    """Make the audit key of ``runtime``'s deployment (``qiao init``, ``qiao audit init-key``).

    Returns the new key's id, or None when the deployment configures no audit
    key (or, with ``existing_ok``, when the log has its key already).
    """
    audit = bound(runtime) or bind(runtime)
    if audit is None:
        return None
    with runtime.db.write() as conn:
        if existing_ok and has_key(conn):
            return None
        return audit.create_key(conn)


def checkpoint_if_due(runtime: Runtime) -> Checkpoint | None:
    """The periodic checkpoint of ``runtime``'s log (:meth:`AuditLog.checkpoint_if_due`)."""
    audit = bound(runtime)
    if audit is None:
        return None
    with runtime.db.write() as conn:
        if not has_key(conn):
            return None
        return audit.checkpoint_if_due(conn)


def _latest_checkpoint(conn: Connection) -> Checkpoint | None:
    table = system.audit_checkpoint
    row = conn.execute(select(table).order_by(table.c.sequence.desc()).limit(1)).first()
    return Checkpoint(**row._mapping) if row is not None else None


def _lock_head(conn: Connection) -> dict[str, Any]:
    head = system.audit_head
    stmt = select(head).where(head.c.id == 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise ConfigurationError("the audit log is not set up; run 'qiao migrate'")
    return dict(row._mapping)
