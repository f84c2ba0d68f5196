"""WeCom and DingTalk departments as Qiao teams, members placed in them, through the worker."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.api import Actor, Source
from qiao.core.testing.worker import drain

from .deployment import add_dingtalk, add_wecom, calls
from .fakes.dingtalk import FakeDingTalk
from .fakes.wecom import FakeWeCom

TEAMS = (
    "{ teams(orderBy: [{field: NAME}]) { edges { node { name kind wecomDepartmentId "
    "dingtalkDepartmentId parent { name } } } } }"
)
USERS = "{ users(orderBy: [{field: USERNAME}]) { edges { node { username team { name } } } } }"


@pytest.fixture
def qiao_enabled_plugins() -> tuple[str, ...]:
    return ("crm", "leads", "connectors")


def teams(client: Any) -> list[tuple[str, str, str | None, str | None]]:
    edges = client.data(TEAMS)["teams"]["edges"]
    return [
        (
            n["name"],
            n["kind"],
            (n["parent"] or {}).get("name"),
            n["wecomDepartmentId"] or n["dingtalkDepartmentId"],
        )
        for n in (e["node"] for e in edges)
    ]


def placed(client: Any) -> dict[str, str | None]:
    edges = client.data(USERS)["users"]["edges"]
    return {e["node"]["username"]: (e["node"]["team"] or {}).get("name") for e in edges}


def user(client: Any, username: str, **values: Any) -> str:
    data = client.data(
        "mutation($input: UserCreateInput!) { createUser(input: $input) { id } }",
        {"input": {"username": username, "displayName": username, **values}},
    )
    return str(data["createUser"]["id"])


def sync(client: Any, worker: Any, name: str) -> None:
    client.data("mutation($n: String!) { syncConnector(name: $n) }", {"n": name})
    drain(worker)


def test_wecom_departments_become_a_team_tree_and_members_join_their_team(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    user(qiao_client, "zhang", email="zhangsan@example.cn")
    user(qiao_client, "li", email="lisi@example.cn")
    add_wecom(qiao_client, wecom, sync_departments=True)
    sync(qiao_client, qiao_worker, "企业微信")
    assert teams(qiao_client) == [
        ("华东销售组", "TEAM", "销售部", "3"),
        ("宁波欧捷泵业", "COMPANY", None, "1"),
        ("销售部", "TEAM", "宁波欧捷泵业", "2"),
    ]
    assert placed(qiao_client)["zhang"] == "销售部"
    assert placed(qiao_client)["li"] == "宁波欧捷泵业"

    # Again, with a renamed department, a member moved and the token expired: no duplicates.
    wecom.departments[2]["name"] = "华东大区"
    wecom.profiles["zhangsan"].update(department=[3, 2], main_department=3)
    wecom.revoke_tokens(42001)
    sync(qiao_client, qiao_worker, "企业微信")
    assert [t[0] for t in teams(qiao_client)] == ["华东大区", "宁波欧捷泵业", "销售部"]
    assert placed(qiao_client)["zhang"] == "华东大区"
    assert ("department/list", "ERROR", "42001") not in calls(qiao_client)
    assert ("user/list", "ERROR", "42001") in calls(qiao_client)


def test_a_department_gone_upstream_is_reported_and_its_team_kept(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    user(qiao_client, "zhang", email="zhangsan@example.cn")
    add_wecom(qiao_client, wecom, sync_departments=True)
    wecom.profiles["zhangsan"].update(department=[3], main_department=3)
    sync(qiao_client, qiao_worker, "企业微信")
    assert placed(qiao_client)["zhang"] == "华东销售组"
    before = len([c for c in calls(qiao_client) if c[0] == "upsert team"])
    wecom.departments.pop()
    wecom.profiles["zhangsan"].update(department=[2], main_department=2)
    sync(qiao_client, qiao_worker, "企业微信")
    assert ("华东销售组", "TEAM", "销售部", None) in teams(qiao_client)
    assert placed(qiao_client)["zhang"] == "销售部"
    assert ("department removed", "PARTIAL", None) in calls(qiao_client)
    detail = qiao_client.data(
        '{ connectorCalls(filter: {operation: {eq: "department removed"}}) '
        "{ edges { node { detail } } } }"
    )["connectorCalls"]["edges"]
    assert [e["node"]["detail"] for e in detail] == [
        "team 华东销售组 (wecom department 3) is gone upstream; kept with 0 members and unlinked"
    ]
    # Reported once: the next run no longer knows the team as a department.
    sync(qiao_client, qiao_worker, "企业微信")
    assert [c[0] for c in calls(qiao_client)].count("department removed") == 1
    assert len([c for c in calls(qiao_client) if c[0] == "upsert team"]) == before


def test_dingtalk_departments_page_their_users_and_lead_routing_follows_the_team(
    qiao_client: Any, qiao_worker: Any, dingtalk: FakeDingTalk, qiao_runtime: Any
) -> None:
    dingtalk.tree = {1: [2, 3], 2: [4], 3: [], 4: []}
    dingtalk.names[4] = "宁波销售组"
    dingtalk.staff[4] = [
        {"userid": "u1", "name": "员工1", "email": "u1@example.cn"},
        {"userid": "ye", "name": "叶明", "email": "ye@example.cn"},
        {"userid": "xu", "name": "徐静", "email": "xu@example.cn"},
    ]
    ye = user(qiao_client, "ye", email="ye@example.cn")
    xu = user(qiao_client, "xu", email="xu@example.cn")
    user(qiao_client, "u1", email="u1@example.cn")  # in 销售部 and, second, 宁波销售组
    add_dingtalk(qiao_client, dingtalk, sync_departments=True)
    dingtalk.expire_tokens()
    sync(qiao_client, qiao_worker, "钉钉")
    assert teams(qiao_client) == [
        ("宁波欧捷泵业", "COMPANY", None, "1"),
        ("宁波销售组", "TEAM", "销售部", "4"),
        ("技术服务部", "TEAM", "宁波欧捷泵业", "3"),
        ("销售部", "TEAM", "宁波欧捷泵业", "2"),
    ]
    assert placed(qiao_client) == {
        "admin": None,
        "u1": "销售部",
        "xu": "宁波销售组",
        "ye": "宁波销售组",
    }
    team = qiao_client.data(
        '{ teams(filter: {dingtalkDepartmentId: {eq: "4"}}) { edges { node { id } } } }'
    )
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(
            ctx,
            "lead_assignment_rule",
            {
                "name": "宁波轮流",
                "position": 10,
                "conditions": {"industry": ["泵阀"]},
                "strategy": "ROUND_ROBIN",
                "team": team["teams"]["edges"][0]["node"]["id"],
            },
        )
        first = records.create(ctx, "lead", {"name": "王先生", "industry": "泵阀"})
        second = records.create(ctx, "lead", {"name": "李女士", "industry": "泵阀"})
    assert {first["owner_id"], second["owner_id"]} == {ye, xu}
    # A second run writes nothing new.
    writes = len(calls(qiao_client))
    sync(qiao_client, qiao_worker, "钉钉")
    assert [c for c in calls(qiao_client)[writes:] if c[1] != "OK"] == []
    assert len(teams(qiao_client)) == 4
