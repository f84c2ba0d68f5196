"""S13: a mould factory builds its "mould trial task" object at run time; each stage notifies.

A business administrator, through GraphQL on the real server (SQLite and
PostgreSQL), with no code and no restart (scenarios S13, docs/automation.md):

- creates the custom object ``mould_trial_task`` (customer, engineer, machine
  number, a state field) with ``createEntity``;
- declares its stages drawing confirmed -> materials ready -> first-article
  inspection -> customer sign-off with ``createPipeline``;
- writes one rule with ``createAutomationRule``: whenever the task enters a
  stage, tell its engineer and the customer's account owner, in the app and on
  a WeCom-like channel.

Each change of stage then produces exactly one notification per person, and a
stage skipped is refused by the pipeline without notifying anyone.
"""

from __future__ import annotations

import itertools

import pytest

from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .conftest import RecordingChannel

pytestmark = pytest.mark.storage

STATES = [
    ("DRAWING_CONFIRMED", "图纸确认"),
    ("MATERIALS_READY", "备料完成"),
    ("FIRST_ARTICLE_INSPECTION", "首件检验"),
    ("CUSTOMER_SIGN_OFF", "客户签样"),
]
TASK = {
    "name": "mould_trial_task",
    "plural": "mould_trial_tasks",
    "label": {"en": "Mould trial task", "zh-CN": "试模任务"},
    "display_field": "title",
    "fields": [
        {"name": "title", "type": "string", "required": True, "label": {"zh-CN": "任务名称"}},
        {
            "name": "customer",
            "type": "relation",
            "target": "account",
            "inverse": "mould_trials",
            "label": {"zh-CN": "客户"},
        },
        {
            "name": "engineer",
            "type": "relation",
            "target": "user",
            "inverse": "mould_trials",
            "label": {"zh-CN": "试模工程师"},
        },
        {"name": "machine_number", "type": "string", "label": {"zh-CN": "机台号"}},
        {
            "name": "status",
            "type": "enum",
            "required": True,
            "default": "DRAWING_CONFIRMED",
            "label": {"zh-CN": "阶段"},
            "values": [{"value": v, "label": {"zh-CN": label}} for v, label in STATES],
        },
    ],
}
PIPELINE = {
    "name": "试模流程",
    "entity": "mould_trial_task",
    "field": "status",
    "initial": ["DRAWING_CONFIRMED"],
    "stages": [{"state": a, "next": [b]} for (a, _), (b, _) in itertools.pairwise(STATES)]
    + [{"state": STATES[-1][0], "next": []}],
}
RULE = {
    "name": "试模阶段变化通知",
    "entity": "mould_trial_task",
    "trigger": {"state_entered": {"field": "status"}},
    "actions": [
        {
            "notify": {
                "fields": ["engineer", "customer.owner"],
                "title": "试模任务「{title}」进入{status}",
                "body": "机台 {machine_number}，客户 {customer.name}",
                "kind": "mould_trial_stage",
            }
        }
    ],
}
CREATE = """
mutation($input: MouldTrialTaskCreateInput!) { createMouldTrialTask(input: $input) { id status } }
"""
MOVE = """
mutation($id: ID!, $input: MouldTrialTaskUpdateInput!) {
  updateMouldTrialTask(id: $id, input: $input) { status }
}
"""
NOTES = """
query($owner: ID!) {
  notifications(filter: {ownerId: {eq: $owner}}, orderBy: [{field: CREATED_AT}]) {
    edges { node { title body kind linkId } }
  }
}
"""


@pytest.fixture
def people(qiao_runtime: Runtime) -> dict[str, str]:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        ids = {
            username: records.create(ctx, "user", {"username": username, "display_name": name})[
                "id"
            ]
            for username, name in [("lin", "林工"), ("xu", "许经理")]
        }
        ids["account"] = records.create(
            ctx, "account", {"name": "东莞精密注塑", "owner": ids["xu"]}
        )["id"]
    return ids


def titles(client: GraphQLClient, owner: str) -> list[str]:
    data = client.data(NOTES, {"owner": owner})["notifications"]["edges"]
    return [e["node"]["title"] for e in data]


def test_each_stage_of_a_trial_notifies_the_engineer_and_the_customers_owner(
    qiao_client: GraphQLClient, people: dict[str, str], qiao_worker: Worker, wecom: RecordingChannel
) -> None:
    qiao_client.data(
        "mutation($d: JSON!) { createEntity(definition: $d) { version } }", {"d": TASK}
    )
    qiao_client.data(
        "mutation($i: PipelineCreateInput!) { createPipeline(input: $i) { id } }", {"i": PIPELINE}
    )
    qiao_client.data(
        "mutation($i: AutomationRuleCreateInput!) { createAutomationRule(input: $i) { id } }",
        {"i": RULE},
    )
    task = qiao_client.data(
        CREATE,
        {
            "input": {
                "title": "汽车门板模具 T1",
                "customerId": people["account"],
                "engineerId": people["lin"],
                "machineNumber": "M-350T-07",
            }
        },
    )["createMouldTrialTask"]
    assert task["status"] == "DRAWING_CONFIRMED"
    drain(qiao_worker)
    skipped = qiao_client.errors(MOVE, {"id": task["id"], "input": {"status": "CUSTOMER_SIGN_OFF"}})
    assert skipped[0]["extensions"]["code"] == "BAD_USER_INPUT"
    for state, _ in STATES[1:]:
        moved = qiao_client.data(MOVE, {"id": task["id"], "input": {"status": state}})
        assert moved == {"updateMouldTrialTask": {"status": state}}
        drain(qiao_worker)

    expected = [f"试模任务「汽车门板模具 T1」进入{label}" for _, label in STATES]
    for person in ("lin", "xu"):
        assert titles(qiao_client, people[person]) == expected
        assert sorted(t for who, t in wecom.pushed if who == people[person]) == sorted(expected)
    first = qiao_client.data(NOTES, {"owner": people["lin"]})["notifications"]["edges"][0]["node"]
    assert first == {
        "title": expected[0],
        "body": "机台 M-350T-07，客户 东莞精密注塑",
        "kind": "mould_trial_stage",
        "linkId": task["id"],
    }
