"""``auditTrail`` through the real server: a record's history, with its request ids."""

from __future__ import annotations

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.testing.client import GraphQLClient

TRAIL = """
query($entity: String!, $id: ID!, $first: Int, $after: String) {
  auditTrail(entity: $entity, id: $id, first: $first, after: $after) {
    edges { cursor node { sequence at actor actorId source operation changes requestId } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""


@pytest.fixture
def audited_client(qiao_client: GraphQLClient) -> GraphQLClient:
    """The server binds the audit key itself, at start-up (``qiao_startup``)."""
    return qiao_client


def trail(client, record_id, **page):
    data = client.data(TRAIL, {"entity": "account", "id": record_id, **page})
    return data["auditTrail"]


def test_a_records_history_with_field_changes_and_request_ids(audited_client):
    both = audited_client.data(
        'mutation { a: createAccount(input: {name: "常州机床"}) { id } '
        'b: createAccount(input: {name: "南通纺机"}) { id } }'
    )
    record_id = both["a"]["id"]
    audited_client.data(
        "mutation($id: ID!) { updateAccount(id: $id, input: {employees: 45}) { id } }",
        {"id": record_id},
    )
    audited_client.data("mutation($id: ID!) { deleteAccount(id: $id) }", {"id": record_id})

    page = trail(audited_client, record_id)
    nodes = [edge["node"] for edge in page["edges"]]
    assert [n["operation"] for n in nodes] == ["create", "update", "delete"]
    assert {(n["actor"], n["source"]) for n in nodes} == {("admin", "graphql")}
    assert nodes[0]["changes"]["name"] == {"old": None, "new": "常州机床"}
    assert nodes[1]["changes"] == {"employees": {"old": None, "new": 45}}
    assert nodes[2]["changes"]["name"] == {"old": "常州机床", "new": None}
    assert nodes[0]["at"].endswith("Z") or nodes[0]["at"].endswith("+00:00")
    # One request id per request, shared by every write it made.
    other = trail(audited_client, both["b"]["id"])["edges"][0]["node"]
    assert other["requestId"] == nodes[0]["requestId"]
    assert len({nodes[0]["requestId"], nodes[1]["requestId"], nodes[2]["requestId"]}) == 3
    assert page["pageInfo"]["hasNextPage"] is False


def test_the_trail_is_paged_by_cursor(audited_client):
    record_id = audited_client.data('mutation { createAccount(input: {name: "x"}) { id } }')[
        "createAccount"
    ]["id"]
    for employees in range(1, 5):
        audited_client.data(
            "mutation($id: ID!, $n: Int!) "
            "{ updateAccount(id: $id, input: {employees: $n}) { id } }",
            {"id": record_id, "n": employees},
        )
    first = trail(audited_client, record_id, first=2)
    assert [e["node"]["operation"] for e in first["edges"]] == ["create", "update"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = trail(audited_client, record_id, first=10, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["changes"]["employees"]["new"] for e in rest["edges"]] == [2, 3, 4]
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["edges"][-1]["cursor"],
    }


def test_bad_paging_arguments_are_input_errors(audited_client):
    (error,) = audited_client.errors(TRAIL, {"entity": "account", "id": "x", "first": 0})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    (error,) = audited_client.errors(TRAIL, {"entity": "account", "id": "x", "after": "nonsense"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


def test_a_user_who_is_not_an_administrator_may_not_read_a_trail(
    audited_client, qiao_runtime, qiao_server
):
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "user", {"username": "li.na", "display_name": "李娜"})
        token = create_token(ctx.connection, qiao_runtime.current(), "li.na", name="t")
    client = GraphQLClient(qiao_server.url, token)
    try:
        (error,) = client.errors(TRAIL, {"entity": "account", "id": "x"})
    finally:
        client.close()
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["auditTrail"]
