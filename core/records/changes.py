"""The change feed: which records were created, updated or deleted, in commit order.

Offline sync (docs/sync.md) and subscriptions read changes "since the last one
I saw" and must never skip one that committed. The feed is the audit log
(docs/audit.md), read without its field values:

- every record write appends an entry in the write's own transaction, so an
  entry exists exactly when the change committed;
- entries are numbered under the log's head lock (``SELECT ... FOR UPDATE`` on
  PostgreSQL, taken just before commit and held to it; SQLite's
  ``BEGIN IMMEDIATE`` admits one writer at a time), so sequence numbers are
  gap-free and follow commit order: entry ``n + 1`` cannot be numbered before
  the transaction holding ``n`` committed. A reader that sees ``n + 1``
  therefore sees ``n``, and "everything after the last sequence I read" misses
  nothing, however writers interleave.

A sequence number from an auto-increment column or a timestamp would not do:
two transactions can take numbers in one order and commit in the other, and a
reader in between would step over the later number for good.

A deployment with no audit key records nothing, so it has no feed either:
:func:`changes_since` refuses with ``CONFIGURATION_ERROR`` rather than answer
an empty feed that would look like "nothing changed". ``qiao init`` always
makes the key; a deployment set up without one gets it with
``qiao audit init-key``, and changes made before that are not in the feed.

The feed says which record changed, never how: values stay in the log, whose
reading is the audit trail's (and an auditor's) business. A reader learns what
a record holds now by reading it through the records service with its own
rules (docs/sync.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, Connection, Select, func, select, union_all

from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.storage import system
from qiao.core.storage.database import Database

Operation = Literal["create", "update", "delete"]
#: The audit operations that are record writes (the records service's; docs/audit.md).
OPERATIONS: tuple[Operation, ...] = ("create", "update", "delete")
#: The most changes one call returns.
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Change:
    """One committed record write: its place in the feed, the record, what was done, when."""

    sequence: int
    entity: str
    record_id: str
    operation: Operation
    at: dt.datetime


@dataclass(frozen=True)
class FeedBounds:
    """The part of the feed the log still holds.

    ``first`` is the oldest entry kept (None while the log is empty); entries
    before it were pruned (docs/audit.md#retention), so a reader whose last
    sequence is below ``first - 1`` has missed changes and must start over.
    ``head`` is the last committed entry (0 for an empty log).
    """

    first: int | None
    head: int

    def covers(self, after: int) -> bool:
        """Whether every change after ``after`` is still in the log (and ``after`` is real)."""
        if after > self.head:
            return False  # a sequence this log never reached: another database, or a restore
        return self.first is None or after >= self.first - 1


class HasDatabase(Protocol):
    """What the feed reads through when not given a connection: a runtime's database.

    Named here rather than importing the runtime, which sits above the records layer.
    """

    @property
    def db(self) -> Database: ...


def changes_since(
    source: Connection | HasDatabase,
    after: int,
    entities: Sequence[str] | None = None,
    limit: int = 1_000,
) -> list[Change]:
    """The record writes committed after sequence ``after``, oldest first, at most ``limit``.

    ``entities`` keeps only those entities' writes (None: every entity). Read
    on from the last change's ``sequence``; fewer than ``limit`` changes means
    the reader has caught up with every commit so far. ``source`` is a
    connection (its transaction's snapshot is used) or a runtime (a read of
    its own). Raises CONFIGURATION_ERROR when the deployment has no audit key.
    """
    if after < 0:
        raise BadUserInput("a change feed position is 0 or more", field="after")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadUserInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if isinstance(source, Connection):
        return _changes(source, after, entities, limit)
    return source.db.run_read(lambda conn: _changes(conn, after, entities, limit), snapshot=True)


def bounds(conn: Connection) -> FeedBounds:
    """Where the feed starts and ends now (see :class:`FeedBounds`); refuses without a key."""
    require_feed(conn)
    entries = system.audit_entry
    first = conn.execute(select(func.min(entries.c.sequence))).scalar()
    head = conn.execute(
        select(system.audit_head.c.sequence).where(system.audit_head.c.id == 1)
    ).scalar_one()
    return FeedBounds(first=first, head=int(head))


def has_key(conn: Connection) -> bool:
    """Whether the log has its MAC key (made by ``qiao init`` or ``qiao audit init-key``).

    The feed is read from the log's tables, so it holds this check; the audit
    log above it asks the same before it writes.
    """
    head = system.audit_head
    return conn.execute(select(head.c.key_id).where(head.c.id == 1)).scalar() is not None


def require_feed(conn: Connection) -> None:
    """Refuse when the deployment keeps no audit log, and so records no changes."""
    if not has_key(conn):
        raise ConfigurationError(
            "this deployment keeps no audit log, so it has no change feed (and no sync); "
            "make the audit key with 'qiao audit init-key' (docs/audit.md)"
        )


def _changes(
    conn: Connection, after: int, entities: Sequence[str] | None, limit: int
) -> list[Change]:
    require_feed(conn)
    entries = system.audit_entry
    columns = (
        entries.c.sequence,
        entries.c.entity,
        entries.c.record_id,
        entries.c.operation,
        entries.c.at,
    )

    def stream(*conditions: ColumnElement[bool]) -> Select[Any]:
        return (
            select(*columns)
            .where(entries.c.sequence > after, entries.c.operation.in_(OPERATIONS), *conditions)
            .order_by(entries.c.sequence)
            .limit(limit)
        )

    if entities is None:
        stmt = stream(entries.c.record_id.is_not(None))
    elif not entities:
        return []
    else:
        # One stream per entity, each a range scan of (entity, sequence), merged: the
        # log interleaves every entity's writes, and a reader of two entities must
        # not wade through the others' (an interaction log can outnumber them 1000:1).
        names = sorted(set(entities))
        if len(names) == 1:
            stmt = stream(entries.c.entity == names[0])
        else:
            merged = union_all(
                *(stream(entries.c.entity == n).subquery().select() for n in names)
            ).subquery()
            stmt = select(merged).order_by(merged.c.sequence).limit(limit)
    return [
        Change(
            sequence=int(row.sequence),
            entity=row.entity,
            record_id=row.record_id,
            operation=row.operation,
            at=row.at,
        )
        for row in conn.execute(stmt)
    ]
