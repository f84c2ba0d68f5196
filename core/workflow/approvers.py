"""Who may decide an approval step: holders of a role, a manager, or a named user.

Approvers are resolved when they are needed (when the step begins, to notify
them, and when someone decides, to check them), so a role assignment or a
manager changed while a request waits takes effect at once. Only active users
count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput
from qiao.core.notifications import users_with_role
from qiao.core.workflow.definitions import ApprovalSpec, Step


def approvers(
    conn: Connection,
    catalog: Catalog,
    step: Step,
    record: Mapping[str, Any],
    submitted_by: str | None,
) -> list[str]:
    """The ids of the users who may decide ``step`` of a request on ``record``."""
    if step.role is not None:
        return users_with_role(conn, catalog, step.role)
    users = catalog.table("user")
    active = users.c.is_active.is_(True)
    if step.user is not None:
        stmt = select(users.c.id).where(users.c.username == step.user, active)
    else:
        whose = record.get("owner_id") if step.manager == "owner" else submitted_by
        if whose is None:
            return []
        manager = select(users.c.manager_id).where(users.c.id == whose).scalar_subquery()
        stmt = select(users.c.id).where(users.c.id == manager, active)
    return list(dict.fromkeys(str(i) for (i,) in conn.execute(stmt)))


def describe(step: Step) -> str:
    """Who decides a step, in words for error messages."""
    if step.role is not None:
        return f"holders of the role {step.role}"
    if step.user is not None:
        return f"the user {step.user}"
    return f"the manager of the record's {step.manager}"


def check_named(conn: Connection, catalog: Catalog, spec: ApprovalSpec) -> None:
    """Refuse a process whose steps name a role or user that does not exist."""
    for i, step in enumerate(spec.steps):
        if step.role is not None:
            t = catalog.table("role")
            found = conn.execute(select(t.c.id).where(t.c.name == step.role)).first()
            what = f"role {step.role!r}"
        elif step.user is not None:
            t = catalog.table("user")
            found = conn.execute(select(t.c.id).where(t.c.username == step.user)).first()
            what = f"user {step.user!r}"
        else:
            continue
        if found is None:
            raise BadUserInput(f"steps[{i}]: there is no {what}", field="steps")
