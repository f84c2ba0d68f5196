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


QUEUE = """
query(
  $first: Int, $after: String, $last: Int, $before: String,
  $filter: ApprovalTaskFilter, $orderBy: [ApprovalTaskOrderBy!]
) {
  pendingApprovals(
    first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy
  ) {
    totalCount
    edges { cursor node { process entity recordId step } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def _queue(client: GraphQLClient, **arguments: Any) -> dict[str, Any]:
    page: dict[str, Any] = client.data(QUEUE, arguments)["pendingApprovals"]
    return page


def _records(page: dict[str, Any]) -> list[str]:
    return [e["node"]["recordId"] for e in page["edges"]]


@pytest.fixture
def queued(qiao_client: GraphQLClient, qiao_clock: Any) -> list[str]:
    """Three accounts and then a contact submitted a minute apart: the admin decides each."""
    _process(qiao_client)
    qiao_client.data(
        "mutation($input: ApprovalProcessCreateInput!) "
        "{ createApprovalProcess(input: $input) { id } }",
        {"input": {"name": "contacts", "entity": "contact", "steps": [{"user": "admin"}]}},
    )
    submitted = []
    for entity, process in [("Account", "key_accounts")] * 3 + [("Contact", "contacts")]:
        created = qiao_client.data(
            f'mutation {{ create{entity}(input: {{name: "待审"}}) {{ id }} }}'
        )[f"create{entity}"]["id"]
        qiao_client.data(
            "mutation($e: String!, $id: ID!, $p: String!) "
            "{ submitForApproval(entity: $e, id: $id, process: $p) { entity } }",
            {"e": entity, "id": created, "p": process},
        )
        submitted.append(created)
        qiao_clock.advance(minutes=1)
    return submitted


def test_the_approval_queue_pages_both_ways_newest_first_and_filters(
    qiao_client: GraphQLClient, queued: list[str]
) -> None:
    top = _queue(qiao_client, first=2)
    assert _records(top) == queued[:2]
    assert top["totalCount"] == 4
    assert (top["pageInfo"]["hasNextPage"], top["pageInfo"]["hasPreviousPage"]) == (True, False)
    assert top["edges"][0]["node"] == {
        "process": "key_accounts",
        "entity": "Account",
        "recordId": queued[0],
        "step": 1,
    }
    rest = _queue(qiao_client, first=5, after=top["pageInfo"]["endCursor"])
    assert _records(rest) == queued[2:]
    assert (rest["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasPreviousPage"]) == (False, True)
    back = _queue(qiao_client, last=2, before=rest["pageInfo"]["startCursor"])
    assert _records(back) == queued[:2]
    assert (back["pageInfo"]["hasNextPage"], back["pageInfo"]["hasPreviousPage"]) == (True, False)
    newest = _queue(qiao_client, first=1, orderBy=[{"field": "SUBMITTED_AT", "direction": "DESC"}])
    assert _records(newest) == queued[3:]

    contacts = _queue(qiao_client, filter={"entity": ["Contact"]})
    assert (_records(contacts), contacts["totalCount"]) == (queued[3:], 1)
    assert _records(_queue(qiao_client, filter={"process": ["key_accounts"]})) == queued[:3]
    assert _queue(qiao_client, filter={"step": 2})["totalCount"] == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"first": -2}, "first"),
        ({"first": 1, "last": 1}, "last"),
        ({"after": "bm9wZQ"}, "after"),
        ({"last": 1, "before": "%%"}, "before"),
        ({"filter": {"entity": ["account"]}}, "entity"),
        ({"filter": {"entity": ["Spaceship"]}}, "entity"),
    ],
)
def test_bad_arguments_of_the_queue_name_their_field(
    qiao_client: GraphQLClient, arguments: dict[str, Any], field: str
) -> None:
    (error,) = qiao_client.errors(QUEUE, arguments)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error


def test_submitting_names_the_entity_by_its_type(qiao_client: GraphQLClient) -> None:
    _process(qiao_client)
    account = qiao_client.data('mutation { createAccount(input: {name: "客户"}) { id } }')
    (error,) = qiao_client.errors(
        'mutation($id: ID!) { submitForApproval(entity: "account", id: $id, '
        'process: "key_accounts") { id } }',
        {"id": account["createAccount"]["id"]},
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "entity"}
    assert "use its type name 'Account'" in error["message"]
