"""WeCom members and DingTalk users matched to Qiao users, so messages reach them.

The directory is read whole (WeCom ``user/list`` from the root department with its
children; DingTalk every department's ``user/list``, paged to the end) and each member is
matched to an active Qiao user by e-mail (or, with ``settings.match_users_by: phone``,
by mobile), whose ``wecom_userid`` / ``dingtalk_userid`` is then set. Qiao users are not
created from the directory: who may sign in to the CRM stays an administrator's choice.
A member id already mapped to another user is left as it is and listed in the sync log.
With ``settings.sync_departments``, the departments read on the way become teams
(:mod:`.teams`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qiao.api import Actor, Conflict, Runtime, Source, normalise_phone
from qiao.plugins.connectors import clients, host
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import teams
from qiao.plugins.connectors.sync.writing import refusal

SYSTEM = Actor.system()
STREAM = "members"
FIELDS = {"wecom": "wecom_userid", "dingtalk": "dingtalk_userid"}


def key_of(member: Mapping[str, Any], by: str) -> str | None:
    if by == "phone":
        mobile = member.get("mobile")
        try:
            return normalise_phone(str(mobile)) if mobile else None
        except ValueError:
            return None
    email = member.get("email")
    return str(email).strip().lower() if email else None


def users_by(runtime: Runtime, by: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = None
    with runtime.db.read() as conn:
        while True:
            page = runtime.records.list(
                conn,
                "user",
                filter={"is_active": {"eq": True}, by: {"is_null": False}},
                first=500,
                after=after,
                actor=SYSTEM,
            )
            for user in page.records:
                key = key_of({"email": user.get("email"), "mobile": user.get("phone")}, by)
                if key:
                    found[key] = dict(user)
            if not page.has_next_page:
                return found
            after = page.cursors[-1]


def match(runtime: Runtime, connector: Connector, members: Iterable[Mapping[str, Any]]) -> int:
    field = FIELDS[connector.vendor]
    by = "phone" if connector.settings.get("match_users_by") == "phone" else "email"
    users = users_by(runtime, by)
    matched = 0
    refused = []
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        for member in members:
            user = users.get(key_of(member, by) or "")
            userid = str(member.get("userid") or "")
            if user is None or not userid or user.get(field) == userid:
                continue
            try:
                with ctx.connection.begin_nested():
                    records.update(ctx, "user", user["id"], {field: userid})
            except Conflict as error:
                values = {field: userid, "username": user["username"]}
                refused.append(
                    refusal(connector.vendor, "user", values, field, str(error), ctx.now())
                )
                continue
            matched += 1
    host.write_calls(runtime, connector.id, refused)
    return matched


def wecom_members(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """Members matched to users; with ``settings.sync_departments``, departments as teams."""
    with_teams = bool(connector.settings.get("sync_departments"))
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.wecom(runtime, connector, wiring)
        members = client.members()
        departments = client.departments() if with_teams else []
    out = {STREAM: match(runtime, connector, members)}
    if with_teams:
        tree = teams.wecom(departments)
        out.update(
            teams.sync(
                runtime, connector, tree, teams.wecom_placements(members), FIELDS[connector.vendor]
            )
        )
    return out


def dingtalk_users(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """Users of every department matched to Qiao users (and, with
    ``settings.sync_departments``, departments as teams: a user listed in several is
    placed in the first of its ``dept_id_list``, else the first that listed it)."""
    members: list[dict[str, Any]] = []
    placements: dict[str, str] = {}
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.dingtalk(runtime, connector, wiring)
        tree = client.department_tree()
        for dept in tree:
            for user in client.users(int(dept["dept_id"])):
                members.append(user)
                listed = user.get("dept_id_list") or [dept["dept_id"]]
                placements.setdefault(str(user.get("userid")), str(listed[0]))
    out = {STREAM: match(runtime, connector, members)}
    if connector.settings.get("sync_departments"):
        out.update(
            teams.sync(
                runtime, connector, teams.dingtalk(tree), placements, FIELDS[connector.vendor]
            )
        )
    return out
