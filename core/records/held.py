"""Which records a client may hold that its caller can no longer read.

Offline sync sends such a record as a tombstone and a live subscription as a
DELETED change; both decide it here, from the change feed and the caller's read
rules, so neither feature imports the other.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from qiao.core.permissions.access import Access, owner_column
from qiao.core.permissions.rights import FilterScope, Scope
from qiao.core.records import changes as feed
from qiao.core.storage import system


def possibly_held(
    conn: Connection,
    access: Access,
    found: list[feed.Change],
    unreadable: list[tuple[str, str]],
) -> set[tuple[str, str]]:
    """The records among ``unreadable`` the client may hold: those that get a tombstone
    (and, for live subscriptions, a DELETED change; core/sync/pull.py, core/graphql/live.py).

    A record the caller cannot read now may have been readable when the client last
    pulled it, and then the client must drop it. One that no state since the page's
    cursor put within the caller's reach cannot be on the client: telling about it
    would only tell that someone else's record changed. That is decided where the
    caller's read rules are all about owners (own, team, subtree, region, and shares)
    and the owner is a field the log records: the owners the record had since the
    cursor are the first change's old owner and every change's new one (a delete
    entry holds the last owner). A record no change moved keeps its owner, and the
    caller's access is the cursor's (else the pull asks for a reset), so it was out
    of reach all along. Otherwise, or when the log redacted the owner, the record
    gets a tombstone (docs/sync.md says what that tells).
    """
    reach_of = {name: _reachable_owners(access, name) for name in {e for e, _ in unreadable}}
    held = {key for key in unreadable if reach_of[key[0]] is None or _shared_with(access, key)}
    decidable = {key for key in unreadable if key not in held}
    entries = [c for c in found if (c.entity, c.record_id) in decidable]
    if not entries:
        return held
    table = system.audit_entry
    wanted = {c.sequence for c in entries}
    rows = conn.execute(  # one range scan of the feed index, not a thousand-value IN list
        select(table.c.sequence, table.c.changes).where(
            table.c.entity.in_(sorted({c.entity for c in entries})),
            table.c.sequence >= min(wanted),
            table.c.sequence <= max(wanted),
        )
    )
    changes = {int(seq): json.loads(text) for seq, text in rows if int(seq) in wanted}
    owners: dict[tuple[str, str], set[str]] = {key: set() for key in decidable}
    touched: set[tuple[str, str]] = set()
    for change in entries:
        key = (change.entity, change.record_id)
        entity = access.catalog.entity(change.entity)
        column = owner_column(entity)
        if column == "id":  # a user record is its own
            owners[key].add(change.record_id)
            touched.add(key)
            continue
        field = next((f for f in entity.fields if f.column == column), None)
        entry = changes[change.sequence].get(field.name) if field is not None else None
        if entry is None:
            if change.operation == "delete":  # owned by its creator, whom the log omits
                held.add(key)
            continue
        if not isinstance(entry, dict) or "new" not in entry:
            held.add(key)  # redacted (an encrypted owner, an erasure): cannot tell
            continue
        if key not in touched and change.operation != "create":
            owners[key].add(str(entry["old"]))
        owners[key].add(str(entry["new"]))
        touched.add(key)
    for key in touched - held:
        reach = reach_of[key[0]]
        assert reach is not None
        if owners[key] & reach:
            held.add(key)
    return held


def _reachable_owners(access: Access, entity_name: str) -> frozenset[str] | None:
    """The owners whose records the caller reads, when owners alone decide; else None."""
    if access.subject is None:
        return None  # reads everything: a record it cannot read was deleted
    subject = access.subject
    by_scope = {
        Scope.NONE: frozenset[str](),
        Scope.OWN: frozenset({subject.user_id}),
        Scope.TEAM: subject.team_users,
        Scope.SUBTREE: subject.subtree_users,
        Scope.REGION: subject.region_users,
    }
    reach: set[str] = set()
    for scope in access.scopes(entity_name, "read"):
        if isinstance(scope, FilterScope) or scope == Scope.ALL:
            return None
        reach |= by_scope[Scope(scope)]
    return frozenset(reach)


def _shared_with(access: Access, key: tuple[str, str]) -> bool:
    subject = access.subject
    return subject is not None and key[1] in subject.shared.get(key[0], (frozenset(),))[0]
