"""What the permission rules need to know about a caller, read once per caller.

Rules are relative to the caller (own, team, subtree, region), so each is
resolved here into the set of user ids whose records it reaches. The sets are
computed with a few small queries over users and teams; inlined into
``owner_id IN (...)`` they let the database use its owner index, so a rule-bound
list costs about what an administrator's does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, or_, select

from qiao.core.actor import Actor
from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError
from qiao.core.metadata.model import FieldType
from qiao.core.permissions.rights import Rights


@dataclass(frozen=True)
class Subject:
    """A caller with their place in the organisation and their roles' rights."""

    user_id: str
    team_id: str | None
    #: Users in the caller's team.
    team_users: frozenset[str]
    #: Users in the caller's team and the teams below it, and the caller's reports, recursively.
    subtree_users: frozenset[str]
    #: Users in the caller's region: the nearest team of kind REGION above them, and below it.
    region_users: frozenset[str]
    #: Teams whose shares reach the caller (their own team and those above it).
    share_teams: frozenset[str]
    roles: tuple[Rights, ...] = field(default=())
    #: Records shared with the caller or those teams: entity -> (readable ids, writable ids).
    shared: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    #: The ids the caller's own user record points at, by relation: ``{"dealer": "0193..."}``,
    #: for filter scopes such as ``{"dealer_id": {"eq": "$me.dealer"}}``.
    links: dict[str, str | None] = field(default_factory=dict)


def load_subject(conn: Connection, catalog: Catalog, actor: Actor) -> Subject:
    """The caller's organisational context and rights, from the users, teams and roles."""
    if actor.user_id is None:
        raise ConfigurationError("the system actor has no permission subject")
    users = catalog.table("user")
    teams = catalog.table("team")
    user_team = {row[0]: row[1] for row in conn.execute(select(users.c.id, users.c.team_id))}
    managers = {row[0]: row[1] for row in conn.execute(select(users.c.id, users.c.manager_id))}
    team_rows = list(conn.execute(select(teams.c.id, teams.c.parent_id, teams.c.kind)))
    parent = {tid: pid for tid, pid, _ in team_rows}
    kind = {tid: k for tid, _, k in team_rows}

    me = actor.user_id
    my_team = user_team.get(me)
    members = _members(user_team)

    team_users = {me} | (members.get(my_team, set()) if my_team else set())
    subtree_teams = _descendants(parent, my_team) if my_team else set()
    subtree_users = {me} | _users_in(members, subtree_teams) | _reports(managers, me)
    region = _nearest(parent, kind, my_team, "REGION") if my_team else None
    region_users = _users_in(members, _descendants(parent, region)) if region else team_users
    share_teams = _ancestors(parent, my_team) if my_team else set()

    assignments = catalog.table("role_assignment")
    roles = catalog.table("role")
    rights = tuple(
        Rights.parse(data)
        for (data,) in conn.execute(
            select(roles.c.rights)
            .select_from(assignments.join(roles, roles.c.id == assignments.c.role_id))
            .where(assignments.c.user_id == me)
            .order_by(roles.c.name)
        )
    )
    return Subject(
        links=_links(conn, catalog, me),
        shared=_shared(conn, catalog, me, share_teams),
        user_id=me,
        team_id=my_team,
        team_users=frozenset(team_users),
        subtree_users=frozenset(subtree_users),
        region_users=frozenset(region_users | {me}),
        share_teams=frozenset(share_teams),
        roles=rights,
    )


def _links(conn: Connection, catalog: Catalog, me: str) -> dict[str, str | None]:
    """The caller's relations to other records (a portal user's dealer, their manager)."""
    users = catalog.table("user")
    relations = [f for f in catalog.entity("user").fields if f.type is FieldType.RELATION]
    row = conn.execute(
        select(*(users.c[f.column] for f in relations)).where(users.c.id == me)
    ).first()
    if row is None:
        return {}
    return {f.name: value for f, value in zip(relations, row, strict=True)}


def _members(user_team: dict[str, str | None]) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {}
    for uid, tid in user_team.items():
        if tid is not None:
            members.setdefault(tid, set()).add(uid)
    return members


def _users_in(members: dict[str, set[str]], teams: Iterable[str]) -> set[str]:
    return {uid for tid in teams for uid in members.get(tid, ())}


def _descendants(parent: dict[str, str | None], root: str) -> set[str]:
    """``root`` and every team below it (cycles are impossible to follow twice)."""
    children: dict[str, list[str]] = {}
    for tid, pid in parent.items():
        if pid is not None:
            children.setdefault(pid, []).append(tid)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _ancestors(parent: dict[str, str | None], team: str) -> set[str]:
    found: set[str] = set()
    current: str | None = team
    while current is not None and current not in found:
        found.add(current)
        current = parent.get(current)
    return found


def _nearest(
    parent: dict[str, str | None], kind: dict[str, str], team: str, wanted: str
) -> str | None:
    for tid in _path_up(parent, team):
        if kind.get(tid) == wanted:
            return tid
    return None


def _path_up(parent: dict[str, str | None], team: str) -> list[str]:
    path: list[str] = []
    current: str | None = team
    while current is not None and current not in path:
        path.append(current)
        current = parent.get(current)
    return path


def _reports(managers: dict[str, str | None], me: str) -> set[str]:
    """Everyone who reports to ``me``, directly or through others."""
    reports: dict[str, list[str]] = {}
    for uid, mid in managers.items():
        if mid is not None:
            reports.setdefault(mid, []).append(uid)
    found: set[str] = set()
    stack = [me]
    while stack:
        for uid in reports.get(stack.pop(), ()):
            if uid not in found and uid != me:
                found.add(uid)
                stack.append(uid)
    return found


def _shared(
    conn: Connection, catalog: Catalog, me: str, teams: set[str]
) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Ids of the records shared with ``me`` or ``teams``, by entity.

    Read once per caller so that rules compile to plain ``id IN (...)`` lists,
    which the database answers from the primary key, rather than a subquery
    that would stop it from using the owner index.
    """
    shares = catalog.table("record_share")
    holders = [shares.c.user_id == me]
    if teams:
        holders.append(shares.c.team_id.in_(sorted(teams)))
    readable: dict[str, set[str]] = {}
    writable: dict[str, set[str]] = {}
    rows = conn.execute(
        select(shares.c.entity, shares.c.record_id, shares.c.access).where(or_(*holders))
    )
    for entity, record_id, access in rows:
        readable.setdefault(entity, set()).add(record_id)
        if access == "WRITE":
            writable.setdefault(entity, set()).add(record_id)
    return {
        entity: (frozenset(ids), frozenset(writable.get(entity, ())))
        for entity, ids in readable.items()
    }
