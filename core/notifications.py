"""In-app notifications: a ``notification`` record per recipient, and who the recipients are.

A notification is written through the records service in the caller's own
transaction, so it exists exactly when the change it reports does, and its
creation is an outbox event: each notification channel (a plugin, see
:mod:`qiao.core.automation.channels`) delivers it from that event in a worker.
It is written by the system: whoever caused it need not be allowed to write
notifications. Users read and mark their own through ``myNotifications`` and
``markNotificationRead``. Rules, approvals and rendered documents all notify,
so this sits below each of them rather than inside one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.records.context import Actor, WriteContext
from qiao.core.records.service import Record

#: Longer titles are cut to fit the field.
MAX_TITLE = 200


@dataclass(frozen=True)
class Notice:
    """One notification to write: to whom, what it says, and what it links to."""

    user: str
    title: str
    kind: str
    body: str = ""
    link_entity: str | None = None
    link_id: str | None = None

    def values(self) -> dict[str, Any]:
        """The notification record's values (the title cut to fit)."""
        return {
            "owner": self.user,
            "title": self.title[:MAX_TITLE],
            "body": self.body,
            "kind": self.kind,
            "link_entity": self.link_entity,
            "link_id": self.link_id,
        }


def notify(
    ctx: WriteContext,
    *,
    users: Sequence[str],
    title: str,
    body: str = "",
    kind: str,
    link_entity: str | None = None,
    link_id: str | None = None,
) -> list[Record]:
    """One notification per distinct user id in ``users``, in the caller's transaction."""
    system = ctx.as_actor(Actor.system())
    return [
        ctx.records.create(
            system, "notification", Notice(user, title, kind, body, link_entity, link_id).values()
        )
        for user in dict.fromkeys(users)
    ]


def notify_many(ctx: WriteContext, notices: Sequence[Notice]) -> list[Record]:
    """Several notifications written as one batch (``create_many``), in the caller's transaction.

    For a batch of changes that each tell someone: one insert, one audit
    append and one outbox insert for all of them, instead of a create each.
    """
    if not notices:
        return []
    system = ctx.as_actor(Actor.system())
    created = ctx.records.create_many(system, "notification", [n.values() for n in notices])
    return list(created.records)


def users_with_role(conn: Connection, catalog: Catalog, role_name: str) -> list[str]:
    """Ids of the active users holding the role ``role_name``, by username."""
    users = catalog.table("user")
    roles = catalog.table("role")
    grants = catalog.table("role_assignment")
    rows = conn.execute(
        select(users.c.id)
        .join(grants, grants.c.user_id == users.c.id)
        .join(roles, roles.c.id == grants.c.role_id)
        .where(roles.c.name == role_name, users.c.is_active.is_(True))
        .order_by(users.c.username)
    )
    return list(dict.fromkeys(r[0] for r in rows))


def user_ids(conn: Connection, catalog: Catalog, usernames: Sequence[str]) -> list[str]:
    """Ids of the active users with these usernames (unknown ones are left out)."""
    if not usernames:
        return []
    users = catalog.table("user")
    rows = conn.execute(
        select(users.c.id).where(users.c.username.in_(usernames), users.c.is_active.is_(True))
    )
    return [r[0] for r in rows]


def manager_of(conn: Connection, catalog: Catalog, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    users = catalog.table("user")
    return conn.execute(select(users.c.manager_id).where(users.c.id == user_id)).scalar()
