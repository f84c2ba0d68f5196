"""What the manufacturing template's scenario tests share.

Each test runs the template ``manufacturing_dealers`` (with ``crm``) on a fresh database,
SQLite and PostgreSQL, behind the real HTTP server. People are made through GraphQL by the
administrator; their bearer tokens are issued as ``qiao user token`` does. The deployment's
clock is controllable (docs/clock.md): tests set and advance it through GraphQL
(``setClock``, ``advanceClock``) as an integrator's acceptance run does, and drive the events
worker pass by pass as ``qiao jobs run-due`` would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.config import Config
from qiao.core.records.context import Actor, Source
from qiao.core.replay import clock as replay_clock
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock, controllable
from qiao.core.testing.server import LiveServer
from qiao.core.worker import Worker
from tests.scenarios.conftest import Replay

pytestmark = pytest.mark.storage


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "manufacturing_dealers")


@pytest.fixture
def qiao_config(qiao_config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The test deployment with ``[clock] controllable = true``; changes seen at once."""
    monkeypatch.setattr(replay_clock, "REFRESH_SECONDS", 0.0)
    return controllable(qiao_config)


@pytest.fixture
def replay(qiao_client: GraphQLClient, qiao_worker: Worker, qiao_clock: TestClock) -> Replay:
    """The replay clock. Real time under it stands still (``qiao_clock`` stopped at an
    instant nobody reads), so the instants a test replays are exact to the second."""
    qiao_clock.set(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    return Replay(qiao_client, qiao_worker)


def type_name(entity: str) -> str:
    return "".join(part.capitalize() for part in entity.split("_"))


def create(client: GraphQLClient, entity: str, values: dict[str, Any], fields: str = "id") -> Any:
    """``create<Entity>(input: values) { fields }``; the created record's fields."""
    name = type_name(entity)
    query = f"mutation($input: {name}CreateInput!) {{ create{name}(input: $input) {{ {fields} }} }}"
    return client.data(query, {"input": values})[f"create{name}"]


def update(
    client: GraphQLClient, entity: str, id_: str, values: dict[str, Any], fields: str = "id"
) -> Any:
    name = type_name(entity)
    query = (
        f"mutation($id: ID!, $input: {name}UpdateInput!) "
        f"{{ update{name}(id: $id, input: $input) {{ {fields} }} }}"
    )
    return client.data(query, {"id": id_, "input": values})[f"update{name}"]


def read(client: GraphQLClient, entity: str, id_: str, fields: str) -> Any:
    name = entity.split("_")[0] + type_name(entity)[len(entity.split("_")[0]) :]
    query = f"query($id: ID!) {{ {name}(id: $id) {{ {fields} }} }}"
    return client.data(query, {"id": id_})[name]


def rearm(client: GraphQLClient, rule: str) -> None:
    """Save a scheduled rule again, so that it counts its next run from the replay clock."""
    found = client.data(
        "query($name: String!) { automationRules(filter: {name: {eq: $name}}) "
        "{ edges { node { id } } } }",
        {"name": rule},
    )["automationRules"]["edges"]
    (rule_id,) = [edge["node"]["id"] for edge in found]
    for active in (False, True):
        update(client, "automation_rule", rule_id, {"active": active})


class People:
    """The staff of 恒锐数控: teams by region, users with the template's roles, and tokens."""

    def __init__(self, admin: GraphQLClient) -> None:
        self.admin = admin
        self.ids: dict[str, str] = {}
        self.teams: dict[str, str] = {}
        roles = admin.data("{ roles(first: 100) { edges { node { id name } } } }")["roles"]
        self.roles = {e["node"]["name"]: e["node"]["id"] for e in roles["edges"]}

    def team(self, name: str, region: str, kind: str = "REGION", parent: str | None = None) -> str:
        values = {"name": name, "kind": kind, "region": region}
        if parent is not None:
            values["parentId"] = self.teams[parent]
        self.teams[name] = create(self.admin, "team", values)["id"]
        return self.teams[name]

    def user(
        self,
        username: str,
        display_name: str,
        role: str,
        team: str | None = None,
        manager: str | None = None,
        **extra: Any,
    ) -> str:
        values: dict[str, Any] = {"username": username, "displayName": display_name, **extra}
        if team is not None:
            values["teamId"] = self.teams[team]
        if manager is not None:
            values["managerId"] = self.ids[manager]
        user_id = create(self.admin, "user", values)["id"]
        create(self.admin, "role_assignment", {"userId": user_id, "roleId": self.roles[role]})
        self.ids[username] = user_id
        return user_id

    def east_manager(self, manager: str | None = None, **extra: Any) -> str:
        """徐海涛, regional manager of 恒锐华东大区 (made with him when it is not yet)."""
        if "恒锐华东大区" not in self.teams:
            self.team("恒锐华东大区", "华东")
        return self.user(
            "xu", "徐海涛", "regional_manager", team="恒锐华东大区", manager=manager, **extra
        )

    def channel_manager(self, **extra: Any) -> str:
        """赵启明, the channel manager over the regions."""
        return self.user("zhao", "赵启明", "channel_manager", **extra)

    def finance(self) -> str:
        """钱淑华, dealer finance: approves rebates and reconciles the ERP."""
        return self.user("qian", "钱淑华", "dealer_finance")


@pytest.fixture
def people(qiao_client: GraphQLClient) -> People:
    return People(qiao_client)


@pytest.fixture
def client_for(
    qiao_server: LiveServer, qiao_runtime: Runtime
) -> Iterator[Callable[[str], GraphQLClient]]:
    """``client_for("zhou")``: a client signed in as that user, closed after the test."""
    clients: list[GraphQLClient] = []

    def make(username: str) -> GraphQLClient:
        records = qiao_runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            token = create_token(ctx.connection, qiao_runtime.current(), username)
        client = GraphQLClient(qiao_server.url, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@dataclass(frozen=True)
class Story:
    """What a scenario plays with: the administrator's client, the replay clock, the events
    worker, the staff and a client signed in as any of them."""

    admin: GraphQLClient
    replay: Replay
    worker: Worker
    people: People
    client_for: Callable[[str], GraphQLClient]


@pytest.fixture
def story(
    qiao_client: GraphQLClient,
    replay: Replay,
    qiao_worker: Worker,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> Story:
    return Story(qiao_client, replay, qiao_worker, people, client_for)
