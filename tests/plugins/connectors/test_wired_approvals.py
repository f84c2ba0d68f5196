"""An approval step delegated to DingTalk: an instance per step, its result decides in Qiao."""

from __future__ import annotations

from typing import Any

from qiao.core.testing.worker import drain

from .deployment import admin_id, set_user
from .dingtalk_approvals import connect, finish
from .fakes.dingtalk import FakeDingTalk

PROCESS = {
    "name": "合同用印",
    "entity": "account",
    "steps": [{"name": "钉钉审批", "user": "dingtalk"}],
}
REQUEST = "{ approvalRequests { edges { node { id status step } } } }"
DECISIONS = "{ approvalDecisions { edges { node { decision comment approver { username } } } } }"


def setup(client: Any, fake: FakeDingTalk) -> str:
    client.data(
        'mutation { createUser(input: {username: "dingtalk", displayName: "钉钉审批"}) { id } }'
    )
    client.data(
        "mutation($input: ApprovalProcessCreateInput!) "
        "{ createApprovalProcess(input: $input) { id } }",
        {"input": PROCESS},
    )
    connect(client, fake, "合同用印", "dingtalk", {"客户名称": "name", "所在省份": "province"})
    set_user(client, admin_id(client), dingtalkUserid="manager1")
    account = client.data(
        'mutation { createAccount(input: {name: "华东精工", province: "浙江"}) { id } }'
    )["createAccount"]["id"]
    client.data(
        f'mutation {{ submitForApproval(entity: "Account", id: "{account}", process: "合同用印")'
        " { id } }"
    )
    return str(account)


def test_agree_in_dingtalk_approves_in_qiao(
    qiao_client: Any, qiao_server: Any, qiao_worker: Any, dingtalk: FakeDingTalk
) -> None:
    setup(qiao_client, dingtalk)
    drain(qiao_worker)
    [(instance, started)] = list(dingtalk.instances.items())
    assert started["request"]["processCode"] == "PROC-SEAL-01"
    assert started["request"]["originatorUserId"] == "manager1"
    assert started["request"]["formComponentValues"] == [
        {"name": "客户名称", "value": "华东精工"},
        {"name": "所在省份", "value": "浙江"},
    ]
    assert qiao_client.data(REQUEST)["approvalRequests"]["edges"][0]["node"]["status"] == "PENDING"
    dingtalk.finish(instance, "COMPLETED", "agree")
    finish(qiao_server, instance)
    drain(qiao_worker)
    node = qiao_client.data(REQUEST)["approvalRequests"]["edges"][0]["node"]
    assert node["status"] == "APPROVED"
    decisions = [e["node"] for e in qiao_client.data(DECISIONS)["approvalDecisions"]["edges"]]
    assert decisions == [
        {
            "decision": "APPROVED",
            "comment": f"钉钉审批 {instance}：同意",
            "approver": {"username": "dingtalk"},
        }
    ]


def test_refuse_in_dingtalk_rejects_in_qiao(
    qiao_client: Any, qiao_server: Any, qiao_worker: Any, dingtalk: FakeDingTalk
) -> None:
    setup(qiao_client, dingtalk)
    drain(qiao_worker)
    [instance] = list(dingtalk.instances)
    dingtalk.finish(instance, "COMPLETED", "refuse")
    finish(qiao_server, instance)
    drain(qiao_worker)
    node = qiao_client.data(REQUEST)["approvalRequests"]["edges"][0]["node"]
    assert node["status"] == "REJECTED"
