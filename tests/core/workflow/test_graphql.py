"""Pipelines and approvals through GraphQL on the real server: definitions, errors, mutations."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.core.testing.client import GraphQLClient

PIPELINE = {
    "name": "service_tickets",
    "entity": "ticket",
    "field": "status",
    "stages": [
        {"state": "OPEN", "next": ["ACCEPTED"]},
        {"state": "ACCEPTED", "next": ["RESOLVED"]},
        {"state": "RESOLVED", "next": ["CLOSED"], "required": ["resolved_at"]},
        {"state": "CLOSED"},
    ],
}
CREATE_PIPELINE = "mutation($input: PipelineCreateInput!) { createPipeline(input: $input) { id } }"
MOVE = """
mutation($id: ID!, $input: TicketUpdateInput!) { updateTicket(id: $id, input: $input) { status } }
"""
SUBMIT = """
mutation($id: ID!, $process: String!) {
  submitForApproval(entity: "Account", id: $id, process: $process) { id status step recordId }
}
"""


@pytest.fixture
def ticket(qiao_client: GraphQLClient) -> str:
    qiao_client.data(CREATE_PIPELINE, {"input": PIPELINE})
    data = qiao_client.data('mutation { createTicket(input: {subject: "数控系统报警"}) { id } }')
    return str(data["createTicket"]["id"])


def test_a_refused_move_is_an_input_error_naming_the_field_and_the_next_states(
    qiao_client: GraphQLClient, ticket: str
) -> None:
    (error,) = qiao_client.errors(MOVE, {"id": ticket, "input": {"status": "CLOSED"}})
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "status",
        "allowed": ["ACCEPTED"],
    }
    assert "cannot move from OPEN to CLOSED" in error["message"]
    qiao_client.data(MOVE, {"id": ticket, "input": {"status": "ACCEPTED"}})
    (missing,) = qiao_client.errors(MOVE, {"id": ticket, "input": {"status": "RESOLVED"}})
    assert missing["extensions"] == {"code": "BAD_USER_INPUT", "field": "resolvedAt"}
    assert "entering RESOLVED needs resolvedAt" in missing["message"]
    resolved = qiao_client.data(
        MOVE,
        {"id": ticket, "input": {"status": "RESOLVED", "resolvedAt": "2026-05-18T10:00:00+08:00"}},
    )
    assert resolved["updateTicket"]["status"] == "RESOLVED"
    history = qiao_client.data(
        "query($id: String!) { stageHistories(filter: {recordId: {eq: $id}}, "
        "orderBy: [{field: ENTERED_AT, direction: ASC}]) "
        "{ edges { node { fromState toState pipeline { name } actor { username } } } } }",
        {"id": ticket},
    )["stageHistories"]["edges"]
    assert [(h["node"]["fromState"], h["node"]["toState"]) for h in history] == [
        (None, "OPEN"),
        ("OPEN", "ACCEPTED"),
        ("ACCEPTED", "RESOLVED"),
    ]
    assert {h["node"]["actor"]["username"] for h in history} == {"admin"}
    assert {h["node"]["pipeline"]["name"] for h in history} == {"service_tickets"}


def test_a_bad_definition_is_an_input_error(qiao_client: GraphQLClient) -> None:
    bad = PIPELINE | {"stages": [{"state": "OPEN", "next": ["LATER"]}]}
    (error,) = qiao_client.errors(CREATE_PIPELINE, {"input": bad})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "stages"
    assert "LATER are not stages" in error["message"]


def _process(client: GraphQLClient, **extra: Any) -> None:
    values = {"name": "key_accounts", "entity": "account", "steps": [{"user": "admin"}]} | extra
    client.data(
        "mutation($input: ApprovalProcessCreateInput!) "
        "{ createApprovalProcess(input: $input) { id } }",
        {"input": values},
    )


def test_submit_approve_and_cancel(qiao_client: GraphQLClient) -> None:
    _process(qiao_client)
    ids = [
        qiao_client.data(f'mutation {{ createAccount(input: {{name: "客户{i}"}}) {{ id }} }}')[
            "createAccount"
        ]["id"]
        for i in range(2)
    ]
    first = qiao_client.data(SUBMIT, {"id": ids[0], "process": "key_accounts"})["submitForApproval"]
    assert (first["status"], first["step"], first["recordId"]) == ("PENDING", 1, ids[0])
    (again,) = qiao_client.errors(SUBMIT, {"id": ids[0], "process": "key_accounts"})
    assert again["extensions"]["code"] == "CONFLICT"
    approved = qiao_client.data(
        'mutation($id: ID!) { approveRequest(id: $id, comment: "可以") { status } }',
        {"id": first["id"]},
    )
    assert approved["approveRequest"]["status"] == "APPROVED"

    second = qiao_client.data(SUBMIT, {"id": ids[1], "process": "key_accounts"})[
        "submitForApproval"
    ]
    (locked,) = qiao_client.errors("mutation($id: ID!) { deleteAccount(id: $id) }", {"id": ids[1]})
    assert locked["extensions"]["code"] == "CONFLICT"
    cancelled = qiao_client.data(
        "mutation($id: ID!) { cancelApprovalRequest(id: $id) { status } }", {"id": second["id"]}
    )
    assert cancelled["cancelApprovalRequest"]["status"] == "CANCELLED"
    assert qiao_client.data("mutation($id: ID!) { deleteAccount(id: $id) }", {"id": ids[1]})


def test_submitting_to_an_unknown_process_names_the_argument(qiao_client: GraphQLClient) -> None:
    account = qiao_client.data('mutation { createAccount(input: {name: "客户"}) { id } }')
    (error,) = qiao_client.errors(
        SUBMIT, {"id": account["createAccount"]["id"], "process": "missing"}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "process"}
