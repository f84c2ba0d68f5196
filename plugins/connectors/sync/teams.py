"""WeCom and DingTalk departments as Qiao teams, and members placed in their department's team.

With ``settings.sync_departments: true`` the directory owns the team tree: each
department is a team found by ``team.wecom_department_id`` / ``dingtalk_department_id``,
its name and parent kept as the directory has them (a new root is a ``COMPANY``, the
rest ``TEAM``; a kind an administrator set later stays), and each user matched to a
member (:mod:`.directory`) is put in the team of the member's main department, so lead
routing and record rules by team follow the organisation chart. Runs are idempotent: an
unchanged directory writes nothing. A department gone upstream is not deleted here, since
its team may have members, rules and records: it is unlinked from the department and
listed in the sync log (``department removed``) for an administrator to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qiao.api import Actor, QiaoError, Runtime, Source
from qiao.plugins.connectors import host
from qiao.plugins.connectors.common.calls import CallRecord, payload_hash
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync.writing import refusal

SYSTEM = Actor.system()
FIELDS = {"wecom": "wecom_department_id", "dingtalk": "dingtalk_department_id"}
TEAMS, PLACED = "teams", "placed"


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    parent: str | None


def parents_first(departments: Iterable[Department]) -> list[Department]:
    """Roots (no parent among them) first, then each level below."""
    by_id = {d.id: d for d in departments}
    level = [d for d in by_id.values() if d.parent not in by_id]
    ordered: list[Department] = []
    while level:
        ordered.extend(level)
        ids = {d.id for d in level}
        level = [d for d in by_id.values() if d.parent in ids]
    return ordered


def every(runtime: Runtime, conn: Any, entity: str, filter: Mapping[str, Any]) -> list[Any]:
    found: list[Any] = []
    after = None
    while True:
        page = runtime.records.list(
            conn, entity, filter=dict(filter), first=500, after=after, actor=SYSTEM
        )
        found.extend(page.records)
        if not page.has_next_page:
            return found
        after = page.cursors[-1]


def removed(
    vendor: str, team: Mapping[str, Any], department: str, members: int, now: Any
) -> CallRecord:
    return CallRecord(
        vendor=vendor,
        operation="department removed",
        status="partial",
        latency_ms=0.0,
        payload_sha256=payload_hash({"department": department}),
        attempt=1,
        at=now.timestamp(),
        error_type="Removed",
        detail=(
            f"team {team['name']} ({vendor} department {department}) is gone upstream; "
            f"kept with {members} members and unlinked"
        )[:300],
    )


def sync(
    runtime: Runtime,
    connector: Connector,
    departments: Iterable[Department],
    placements: Mapping[str, str],
    user_field: str,
) -> dict[str, int]:
    """Upsert the department tree as teams and place the users whose ``user_field`` names
    a member (``placements``: member id -> department id)."""
    vendor = connector.vendor
    field = FIELDS[vendor]
    tree = parents_first(departments)
    upstream = {d.id for d in tree}
    log: list[CallRecord] = []
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        conn = ctx.connection
        linked = {
            str(t[field]): t for t in every(runtime, conn, "team", {field: {"is_null": False}})
        }
        teams: dict[str, str] = {}
        for dept in tree:
            values: dict[str, Any] = {
                "name": dept.name[:200],
                "parent": teams.get(dept.parent or ""),
            }
            team = linked.get(dept.id)
            try:
                with conn.begin_nested():
                    if team is None:
                        kind = "TEAM" if dept.parent in upstream else "COMPANY"
                        team = records.create(ctx, "team", {field: dept.id, "kind": kind, **values})
                    else:
                        records.update(ctx, "team", team["id"], values)
            except QiaoError as error:
                log.append(refusal(vendor, "team", {field: dept.id}, field, str(error), ctx.now()))
                continue
            teams[dept.id] = str(team["id"])
        placed = 0
        for user in every(runtime, conn, "user", {user_field: {"is_null": False}}):
            team_id = teams.get(placements.get(str(user[user_field]), ""))
            if team_id is None or user.get("team_id") == team_id:
                continue
            records.update(ctx, "user", user["id"], {"team": team_id})
            placed += 1
        for dept_id, team in linked.items():
            if dept_id in upstream:
                continue
            members = len(every(runtime, conn, "user", {"team_id": {"eq": team["id"]}}))
            records.update(ctx, "team", team["id"], {field: None})
            log.append(removed(vendor, team, dept_id, members, ctx.now()))
    host.write_calls(runtime, connector.id, log)
    return {TEAMS: len(teams), PLACED: placed}


def tree_of(entries: Iterable[Mapping[str, Any]], id_key: str, parent_key: str) -> list[Department]:
    """Directory entries as departments (a parent of 0 or none is above the root)."""
    return [
        Department(
            str(d[id_key]),
            str(d.get("name") or d[id_key]),
            str(d[parent_key]) if d.get(parent_key) else None,
        )
        for d in entries
    ]


def wecom(departments: Iterable[Mapping[str, Any]]) -> list[Department]:
    """WeCom's ``department/list`` entries (``parentid`` 0 is above the root)."""
    return tree_of(departments, "id", "parentid")


def dingtalk(departments: Iterable[Mapping[str, Any]]) -> list[Department]:
    """DingTalk's ``department/get`` and ``listsub`` entries."""
    return tree_of(departments, "dept_id", "parent_id")


def wecom_placements(members: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Member id -> main department (``main_department``, else the first listed)."""
    out = {}
    for member in members:
        main = member.get("main_department") or next(iter(member.get("department") or []), None)
        if member.get("userid") and main is not None:
            out[str(member["userid"])] = str(main)
    return out
