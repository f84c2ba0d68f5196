"""S6: a quote more than 5 % below list price goes to the sales manager for approval.

An industrial equipment service company (docs/workflow.md, scenarios S6). Through
GraphQL on the real server, on SQLite and PostgreSQL, with the runtime's clock
stopped at a known instant:

- the administrator declares the approval process as data (``createApprovalProcess``):
  entry condition ``quoted_price < list_price * 0.95``, one step decided by the
  manager of the quote's owner, outcome actions setting the quote's status;
- 张三 (sales rep) quotes 6 % below list: the quote is submitted and locked at once,
  his manager 陈经理 is notified; exactly 5 % below needs no approval;
- a colleague may not decide it, nobody may change the quote while it waits;
- 陈经理 approves (or rejects) with a comment; the status follows, the decision
  is in the audit trail under his name.
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

NOW = dt.datetime(2026, 5, 18, 2, 30, tzinfo=dt.UTC)  # 10:30 in Shanghai

DEFINE = """
mutation($input: ApprovalProcessCreateInput!) { createApprovalProcess(input: $input) { id name } }
"""
PROCESS = {
    "name": "quote_discount",
    "entity": "quote",
    "description": "报价低于标准价 5% 以上须经销售经理审批",
    "entryCondition": "quoted_price < list_price * 0.95",
    "steps": [{"name": "销售经理审批", "manager": "owner"}],
    "onSubmitted": [{"set": {"status": "PENDING_APPROVAL"}}],
    "onApproved": [{"set": {"status": "APPROVED"}}],
    "onRejected": [{"set": {"status": "REJECTED"}}],
}
QUOTE = """
mutation($input: QuoteCreateInput!) {
  createQuote(input: $input) { id status listPrice quotedPrice }
}
"""
REQUESTS = """
query($id: String!) {
  approvalRequests(filter: {recordId: {eq: $id}}) {
    edges { node {
      id status step submittedAt decidedAt owner { username } process { name }
      decisions { edges { node { decision comment decidedAt approver { username } } } }
    } }
  }
}
"""
DECIDE = """
mutation($id: ID!, $comment: String) {
  approve: approveRequest(id: $id, comment: $comment) { id status step entity recordId }
}
"""
REJECT = """
mutation($id: ID!, $comment: String) {
  rejectRequest(id: $id, comment: $comment) { id status step }
}
"""
TRAIL = """
query($id: ID!) {
  auditTrail(entity: "ApprovalDecision", id: $id) { edges { node { actor operation } } }
}
"""


@pytest.fixture
def people(qiao_runtime: Runtime, qiao_clock: TestClock) -> dict[str, str]:
    """陈经理 manages 张三; 王五 is a rep elsewhere. Returns each user's token."""
    qiao_clock.set(NOW)
    records = qiao_runtime.records
    with records.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }
    tokens: dict[str, str] = {}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        ids: dict[str, str] = {}
        for username, name, manager, role in [
            ("chen", "陈经理", None, "sales_manager"),
            ("zhang", "张三", "chen", "sales_rep"),
            ("wang", "王五", None, "sales_rep"),
        ]:
            user = records.create(
                ctx,
                "user",
                {"username": username, "display_name": name, "manager": ids.get(manager or "")},
            )
            ids[username] = user["id"]
            records.create(ctx, "role_assignment", {"user": user["id"], "role": roles[role]})
            tokens[username] = create_token(ctx.connection, qiao_runtime.current(), username)
    return tokens


@pytest.fixture
def tokens(people: dict[str, str]) -> dict[str, str]:
    return people


@pytest.fixture
def account(qiao_client: GraphQLClient, client_for: Callable[[str], GraphQLClient]) -> str:
    """张三's own account: quoting for an account needs read access to it."""
    qiao_client.data(DEFINE, {"input": PROCESS})
    data = client_for("zhang").data(
        'mutation { createAccount(input: {name: "常州数控设备服务有限公司"}) { id } }'
    )
    return str(data["createAccount"]["id"])


def _quote(client: GraphQLClient, account: str, name: str, quoted: str) -> dict[str, Any]:
    values = {"name": name, "accountId": account, "listPrice": "200000.00", "quotedPrice": quoted}
    return client.data(QUOTE, {"input": values})["createQuote"]


def _request(client: GraphQLClient, quote_id: str) -> dict[str, Any] | None:
    edges = client.data(REQUESTS, {"id": quote_id})["approvalRequests"]["edges"]
    assert len(edges) <= 1
    return edges[0]["node"] if edges else None


def test_a_deep_discount_is_approved_by_the_reps_manager(
    client_for: Callable[[str], GraphQLClient],
    qiao_client: GraphQLClient,
    qiao_clock: TestClock,
    account: str,
) -> None:
    zhang, chen, wang = client_for("zhang"), client_for("chen"), client_for("wang")
    quote = _quote(zhang, account, "主轴维保年度报价", "188000.00")  # 6 % below list
    assert quote["status"] == "PENDING_APPROVAL"

    request = _request(chen, quote["id"])
    assert request is not None
    assert request["status"] == "PENDING"
    assert request["owner"] == {"username": "zhang"}
    assert request["process"] == {"name": "quote_discount"}
    assert request["submittedAt"] == "2026-05-18T02:30:00.000000+00:00"
    notes = qiao_client.data(
        '{ notifications(filter: {kind: {eq: "approval"}}) '
        "{ edges { node { title linkId owner { username } } } } }"
    )["notifications"]["edges"]
    assert [(n["node"]["owner"]["username"], n["node"]["linkId"]) for n in notes] == [
        ("chen", request["id"])
    ]

    (locked,) = zhang.errors(
        'mutation($id: ID!) { updateQuote(id: $id, input: {quotedPrice: "150000.00"}) { id } }',
        {"id": quote["id"]},
    )
    assert locked["extensions"]["code"] == "CONFLICT"
    assert locked["extensions"]["field"] == "id"
    assert request["id"] in locked["message"]

    queue = (
        "{ pendingApprovals { edges { node "
        "{ id process entity recordId step stepName submittedById } } } }"
    )
    assert [t["id"] for t in chen.nodes(queue)] == [request["id"]]
    assert chen.nodes(queue)[0]["stepName"] == "销售经理审批"
    assert wang.nodes(queue) == []

    (forbidden,) = wang.errors(DECIDE, {"id": request["id"], "comment": "我来批"})
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    assert "manager of the record's owner" in forbidden["message"]

    qiao_clock.advance(hours=2, minutes=5)
    approved = chen.data(DECIDE, {"id": request["id"], "comment": "战略客户，同意让利"})["approve"]
    assert approved == {
        "id": request["id"],
        "status": "APPROVED",
        "step": 1,
        "entity": "Quote",
        "recordId": quote["id"],
    }
    status = zhang.data("query($id: ID!) { quote(id: $id) { status } }", {"id": quote["id"]})
    assert status["quote"]["status"] == "APPROVED"
    done = _request(chen, quote["id"])
    assert done is not None
    assert done["decidedAt"] == "2026-05-18T04:35:00.000000+00:00"
    (decision,) = [e["node"] for e in done["decisions"]["edges"]]
    assert decision == {
        "decision": "APPROVED",
        "comment": "战略客户，同意让利",
        "decidedAt": "2026-05-18T04:35:00.000000+00:00",
        "approver": {"username": "chen"},
    }
    decision_id = qiao_client.data("{ approvalDecisions { edges { node { id } } } }")[
        "approvalDecisions"
    ]["edges"][0]["node"]["id"]
    trail = qiao_client.data(TRAIL, {"id": decision_id})["auditTrail"]["edges"]
    assert [(e["node"]["actor"], e["node"]["operation"]) for e in trail] == [("chen", "CREATE")]

    sent = zhang.data(
        "mutation($id: ID!) { updateQuote(id: $id, input: {status: SENT}) { status } }",
        {"id": quote["id"]},
    )
    assert sent["updateQuote"]["status"] == "SENT"


def test_a_rejected_quote_is_marked_rejected_with_the_managers_comment(
    client_for: Callable[[str], GraphQLClient], account: str
) -> None:
    zhang, chen = client_for("zhang"), client_for("chen")
    quote = _quote(zhang, account, "备件报价", "179999.99")
    request = _request(chen, quote["id"])
    assert request is not None
    rejected = chen.data(REJECT, {"id": request["id"], "comment": "折扣超过 10%，请重新核算"})
    assert rejected["rejectRequest"]["status"] == "REJECTED"
    status = zhang.data("query($id: ID!) { quote(id: $id) { status } }", {"id": quote["id"]})
    assert status["quote"]["status"] == "REJECTED"
    (again,) = chen.errors(DECIDE, {"id": request["id"], "comment": None})
    assert again["extensions"]["code"] == "CONFLICT"


def test_exactly_five_percent_below_list_needs_no_approval(
    client_for: Callable[[str], GraphQLClient], account: str
) -> None:
    zhang, chen = client_for("zhang"), client_for("chen")
    at_limit = _quote(zhang, account, "恰好九五折", "190000.00")
    assert at_limit["status"] == "DRAFT"
    assert _request(chen, at_limit["id"]) is None
    above = _quote(zhang, account, "按标准价", "200000.00")
    assert above["status"] == "DRAFT"
    edited = zhang.data(
        'mutation($id: ID!) { updateQuote(id: $id, input: {name: "按标准价（修订）"}) { status } }',
        {"id": above["id"]},
    )
    assert edited["updateQuote"]["status"] == "DRAFT"
    cut = zhang.data(
        'mutation($id: ID!) { updateQuote(id: $id, input: {quotedPrice: "189999.99"}) { status } }',
        {"id": above["id"]},
    )
    assert cut["updateQuote"]["status"] == "PENDING_APPROVAL"
    assert _request(chen, above["id"]) is not None


RULE = """
mutation($input: AutomationRuleCreateInput!) { createAutomationRule(input: $input) { id } }
"""


def test_a_rule_may_start_the_approval_instead_of_an_entry_condition(
    client_for: Callable[[str], GraphQLClient],
    qiao_client: GraphQLClient,
    qiao_worker: Worker,
    people: dict[str, str],
) -> None:
    by_rule = PROCESS | {"name": "quote_discount_by_rule", "entryCondition": None}
    qiao_client.data(DEFINE, {"input": by_rule})
    rule = {
        "name": "报价折扣审批",
        "entity": "quote",
        "trigger": {"created": {}},
        "condition": "quoted_price < list_price * 0.95",
        "actions": [{"start_approval": {"process": "quote_discount_by_rule"}}],
    }
    qiao_client.data(RULE, {"input": rule})
    zhang, chen = client_for("zhang"), client_for("chen")
    account = zhang.data('mutation { createAccount(input: {name: "无锡压缩机"}) { id } }')
    deep = _quote(zhang, account["createAccount"]["id"], "压缩机大修", "180000.00")
    at_limit = _quote(zhang, account["createAccount"]["id"], "压缩机保养", "190000.00")
    assert deep["status"] == at_limit["status"] == "DRAFT"  # the rule acts after the commit

    drain(qiao_worker)

    request = _request(chen, deep["id"])
    assert request is not None
    assert (request["status"], request["owner"]) == ("PENDING", {"username": "zhang"})
    assert _request(chen, at_limit["id"]) is None
    status = zhang.data("query($id: ID!) { quote(id: $id) { status } }", {"id": deep["id"]})
    assert status["quote"]["status"] == "PENDING_APPROVAL"
    chen.data(DECIDE, {"id": request["id"], "comment": "同意"})
    status = zhang.data("query($id: ID!) { quote(id: $id) { status } }", {"id": deep["id"]})
    assert status["quote"]["status"] == "APPROVED"
