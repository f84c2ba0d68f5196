"""S3: a machine's ticket reaches the regional engineer within 30 s, and the supervisor after 2 h.

After-sales service of a manufacturer (scenarios S3, docs/automation.md). Through
GraphQL on the real server, on SQLite and PostgreSQL, with the runtime's clock
stopped and a worker driven by the test:

- the administrator writes two rules as data (``createAutomationRule``): a new
  ticket goes to the service engineer whose team covers the customer's province,
  who is told in the app and on a WeCom-like channel; a ticket still OPEN two
  hours after it was opened is escalated to the engineer's manager (the service
  supervisor), who is told the same way;
- a ticket nobody accepts is escalated; one the engineer accepts in time is not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .conftest import RecordingChannel

pytestmark = pytest.mark.storage
OPENED = dt.datetime(2026, 6, 1, 1, 15, tzinfo=dt.UTC)  # Monday 09:15 in Shanghai

RULE = """
mutation($input: AutomationRuleCreateInput!) { createAutomationRule(input: $input) { id } }
"""
DISPATCH = {
    "name": "新工单派给区域工程师",
    "entity": "ticket",
    "description": "按客户所在省份派给该区域的服务工程师，并立即通知",
    "trigger": {"created": {}},
    "actions": [
        {"assign": {"role": "service_engineer", "region": "account.province"}},
        {
            "notify": {
                "fields": ["owner"],
                "title": "新服务工单：{subject}",
                "body": "客户 {account.name}，设备序列号 {serial_number}",
                "kind": "ticket_assigned",
            }
        },
    ],
}
ESCALATE = {
    "name": "两小时未受理升级主管",
    "entity": "ticket",
    "trigger": {"after": {"field": "created_at", "minutes": 120}},
    "condition": 'status = "OPEN"',
    "actions": [
        {
            "escalate": {
                "to": "manager",
                "stamp": "escalated_at",
                "title": "工单超时未受理，已升级给你：{subject}",
                "body": "设备序列号 {serial_number}，客户 {account.name}",
            }
        }
    ],
}
TICKET = """
mutation($input: TicketCreateInput!) { createTicket(input: $input) { id createdAt } }
"""
READ = """
query($id: ID!) {
  ticket(id: $id) { status escalatedAt owner { username } }
}
"""
ACCEPT = """
mutation($id: ID!) { updateTicket(id: $id, input: {status: ACCEPTED}) { status } }
"""
MINE = "{ myNotifications { edges { node { title body kind linkId createdAt } } } }"


@pytest.fixture
def org(qiao_runtime: Runtime, qiao_clock: TestClock) -> dict[str, Any]:
    """Supervisor 孙主管 manages 周工 (Zhejiang) and 郑工 (Jiangsu). Returns ids and tokens."""
    qiao_clock.set(OPENED)
    records = qiao_runtime.records
    with records.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }
    org: dict[str, Any] = {"id": {}, "token": {}}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        teams = {
            province: records.create(ctx, "team", {"name": f"{province}服务组", "region": province})
            for province in ("浙江", "江苏")
        }
        boss = records.create(ctx, "user", {"username": "sun", "display_name": "孙主管"})
        org["id"]["sun"] = boss["id"]
        for username, name, province in [("zhou", "周工", "浙江"), ("zheng", "郑工", "江苏")]:
            user = records.create(
                ctx,
                "user",
                {
                    "username": username,
                    "display_name": name,
                    "team": teams[province]["id"],
                    "manager": boss["id"],
                },
            )
            records.create(
                ctx, "role_assignment", {"user": user["id"], "role": roles["service_engineer"]}
            )
            org["id"][username] = user["id"]
        for username in ("sun", "zhou", "zheng"):
            org["token"][username] = create_token(ctx.connection, qiao_runtime.current(), username)
        customer = records.create(ctx, "account", {"name": "宁波精工模具", "province": "浙江"})
        org["account"] = customer["id"]
    return org


@pytest.fixture
def tokens(org: dict[str, Any]) -> dict[str, str]:
    return org["token"]


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def test_unaccepted_tickets_escalate_and_accepted_ones_do_not(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    qiao_clock: TestClock,
    qiao_worker: Worker,
    wecom: RecordingChannel,
    org: dict[str, Any],
) -> None:
    for rule in (DISPATCH, ESCALATE):
        qiao_client.data(RULE, {"input": rule})
    # The customer scans the QR code on the machine: a ticket with its serial number.
    scanned = {
        "subject": "注塑机液压报警",
        "serialNumber": "HX-2026-0815",
        "accountId": org["account"],
    }
    first = qiao_client.data(TICKET, {"input": scanned})["createTicket"]
    other = {**scanned, "subject": "模温机不升温", "serialNumber": "MT-0007"}
    second = qiao_client.data(TICKET, {"input": other})["createTicket"]

    qiao_clock.advance(seconds=5)  # a worker polls well within the 30 s
    drain(qiao_worker)
    zhou = client_for("zhou")
    for ticket in (first, second):
        assert zhou.data(READ, {"id": ticket["id"]})["ticket"]["owner"] == {"username": "zhou"}
    told = zhou.nodes(MINE)
    assert sorted(n["title"] for n in told) == [
        "新服务工单：模温机不升温",
        "新服务工单：注塑机液压报警",
    ]
    note = next(n for n in told if n["linkId"] == first["id"])
    assert note["body"] == "客户 宁波精工模具，设备序列号 HX-2026-0815"
    assert _at(note["createdAt"]) - _at(first["createdAt"]) <= dt.timedelta(seconds=30)
    zhou_id = org["id"]["zhou"]
    assert sorted(wecom.pushed) == sorted((zhou_id, n["title"]) for n in told)

    qiao_clock.advance(minutes=50)
    assert zhou.data(ACCEPT, {"id": second["id"]}) == {"updateTicket": {"status": "ACCEPTED"}}
    qiao_clock.set(OPENED + dt.timedelta(hours=2) - dt.timedelta(seconds=1))
    drain(qiao_worker)
    assert zhou.data(READ, {"id": first["id"]})["ticket"]["escalatedAt"] is None

    qiao_clock.advance(seconds=1)  # two hours after opening
    drain(qiao_worker)
    sun = client_for("sun")
    escalated = qiao_client.data(READ, {"id": first["id"]})["ticket"]
    assert escalated["owner"] == {"username": "sun"}
    assert escalated["status"] == "OPEN"
    assert _at(escalated["escalatedAt"]) == OPENED + dt.timedelta(hours=2)
    kept = qiao_client.data(READ, {"id": second["id"]})["ticket"]
    assert (kept["owner"], kept["escalatedAt"]) == ({"username": "zhou"}, None)
    (alert,) = sun.nodes(MINE)
    assert alert["title"] == "工单超时未受理，已升级给你：注塑机液压报警"
    assert alert["kind"] == "escalation"
    assert (org["id"]["sun"], alert["title"]) in wecom.pushed
