"""A manufacturing sales organisation to test permissions against (docs/permissions.md).

恒通集团 (company)
├── 华东大区 (region)  director 周总 (regional_director)
│   ├── 苏州组 (team)  manager 陈经理 (sales_manager); reps 张三, 李四 report to him
│   └── 宁波组 (team)  rep 王五
└── 华北大区 (region)
    └── 北京组 (team)  rep 赵六
service engineer 孙工 (苏州组), finance 钱会计, security auditor 吴审计 (no team)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer

USERS = {
    # username: (display name, team, manager, role)
    "zhou": ("周总", "east", None, "regional_director"),
    "chen": ("陈经理", "suzhou", "zhou", "sales_manager"),
    "zhang": ("张三", "suzhou", "chen", "sales_rep"),
    "li": ("李四", "suzhou", "chen", "sales_rep"),
    "wang": ("王五", "ningbo", "zhou", "sales_rep"),
    "zhao": ("赵六", "beijing", None, "sales_rep"),
    "sun": ("孙工", "suzhou", None, "service_engineer"),
    "qian": ("钱会计", None, None, "finance"),
    "wu": ("吴审计", None, None, "security_auditor"),
    "nobody": ("无角色", "suzhou", None, None),
}
TEAMS = {
    # code: (name, kind, parent)
    "group": ("恒通集团", "COMPANY", None),
    "east": ("华东大区", "REGION", "group"),
    "north": ("华北大区", "REGION", "group"),
    "suzhou": ("苏州组", "TEAM", "east"),
    "ningbo": ("宁波组", "TEAM", "east"),
    "beijing": ("北京组", "TEAM", "north"),
}


@dataclass
class Org:
    runtime: Runtime
    users: dict[str, str]  # username -> id
    teams: dict[str, str]  # code -> id
    roles: dict[str, str]  # name -> id

    def actor(self, username: str) -> Actor:
        return Actor(user_id=self.users[username], username=username)

    def create(self, entity_name: str, /, **values: Any) -> dict[str, Any]:
        records = self.runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, entity_name, values)

    def token(self, username: str) -> str:
        with self.runtime.db.write() as conn:
            return create_token(conn, self.runtime.current(), username)


@pytest.fixture
def org(qiao_runtime: Runtime) -> Org:
    records = qiao_runtime.records
    with records.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }
    teams: dict[str, str] = {}
    users: dict[str, str] = {}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for code, (name, kind, parent) in TEAMS.items():
            team = records.create(
                ctx, "team", {"name": name, "code": code, "kind": kind, "parent": teams.get(parent)}
            )
            teams[code] = team["id"]
        for username, (display, team, manager, role) in USERS.items():
            user = records.create(
                ctx,
                "user",
                {
                    "username": username,
                    "display_name": display,
                    "team": teams.get(team) if team else None,
                    "manager": users.get(manager) if manager else None,
                },
            )
            users[username] = user["id"]
            if role:
                records.create(ctx, "role_assignment", {"user": user["id"], "role": roles[role]})
    return Org(qiao_runtime, users, teams, roles)


@pytest.fixture
def client_for(org: Org, qiao_server: LiveServer) -> Iterator[Callable[[str], GraphQLClient]]:
    clients: list[GraphQLClient] = []

    def make(username: str) -> GraphQLClient:
        client = GraphQLClient(qiao_server.url, org.token(username))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
