"""``auditTrail`` through the real server: a record's history as a Relay connection, named
as the API names things (type names, camelCase fields, enums in capitals)."""

from __future__ import annotations

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.testing.client import GraphQLClient

TRAIL = """
query(
  $entity: String!, $id: ID!, $first: Int, $after: String, $last: Int, $before: String,
  $filter: AuditEntryFilter, $orderBy: [AuditEntryOrderBy!]
) {
  auditTrail(
    entity: $entity, id: $id, first: $first, after: $after, last: $last, before: $before,
    filter: $filter, orderBy: $orderBy
  ) {
    totalCount
    edges { cursor node { sequence at actor actorId source operation changes requestId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.fixture
def audited_client(qiao_client: GraphQLClient) -> GraphQLClient:
    """The server binds the audit key itself, at start-up (``qiao_startup``)."""
    return qiao_client


def trail(client, record_id, **page):
    data = client.data(TRAIL, {"entity": "Account", "id": record_id, **page})
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
    assert [n["operation"] for n in nodes] == ["CREATE", "UPDATE", "DELETE"]
    assert {(n["actor"], n["source"]) for n in nodes} == {("admin", "GRAPHQL")}
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
    assert [e["node"]["operation"] for e in first["edges"]] == ["CREATE", "UPDATE"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = trail(audited_client, record_id, first=10, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["changes"]["employees"]["new"] for e in rest["edges"]] == [2, 3, 4]
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": rest["edges"][0]["cursor"],
        "endCursor": rest["edges"][-1]["cursor"],
    }
    assert rest["totalCount"] == first["totalCount"] == 5


def test_bad_paging_arguments_are_input_errors(audited_client):
    (error,) = audited_client.errors(TRAIL, {"entity": "Account", "id": "x", "first": -1})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    (error,) = audited_client.errors(TRAIL, {"entity": "Account", "id": "x", "after": "nonsense"})
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
        (error,) = client.errors(TRAIL, {"entity": "Account", "id": "x"})
    finally:
        client.close()
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["auditTrail"]


def updated_five_times(client) -> str:
    """An account with a create and four updates of annualRevenue: five entries."""
    record_id = client.data('mutation { createAccount(input: {name: "嘉兴轴承"}) { id } }')[
        "createAccount"
    ]["id"]
    for revenue in ("1.00", "2.00", "3.00", "4.00"):
        client.data(
            "mutation($id: ID!, $r: Decimal!) "
            "{ updateAccount(id: $id, input: {annualRevenue: $r}) { id } }",
            {"id": record_id, "r": revenue},
        )
    return record_id


def revenues(page) -> list[str | None]:
    return [e["node"]["changes"].get("annualRevenue", {}).get("new") for e in page["edges"]]


def test_changes_are_keyed_by_the_api_names_of_fields(audited_client):
    record_id = updated_five_times(audited_client)
    nodes = [e["node"] for e in trail(audited_client, record_id)["edges"]]
    assert nodes[1]["changes"] == {"annualRevenue": {"old": None, "new": "1.00"}}
    assert not any("annual_revenue" in n["changes"] for n in nodes)


def test_the_trail_pages_backward_and_newest_first(audited_client):
    record_id = updated_five_times(audited_client)
    tail = trail(audited_client, record_id, last=2)
    assert revenues(tail) == ["3.00", "4.00"]
    assert tail["pageInfo"]["hasPreviousPage"] is True
    assert tail["pageInfo"]["hasNextPage"] is False
    earlier = trail(audited_client, record_id, last=2, before=tail["pageInfo"]["startCursor"])
    assert revenues(earlier) == ["1.00", "2.00"]
    assert earlier["pageInfo"]["hasPreviousPage"] is True
    assert earlier["pageInfo"]["hasNextPage"] is True
    newest = {"field": "AT", "direction": "DESC"}
    top = trail(audited_client, record_id, first=2, orderBy=[newest])
    assert revenues(top) == ["4.00", "3.00"]
    assert top["pageInfo"]["hasNextPage"] is True
    assert top["pageInfo"]["hasPreviousPage"] is False
    rest = trail(
        audited_client, record_id, first=5, after=top["pageInfo"]["endCursor"], orderBy=[newest]
    )
    assert revenues(rest) == ["2.00", "1.00", None]
    assert [e["node"]["operation"] for e in rest["edges"]][-1] == "CREATE"
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": rest["edges"][0]["cursor"],
        "endCursor": rest["edges"][-1]["cursor"],
    }
    assert rest["totalCount"] == 5
    # One key may be written without the list, as docs/audit.md shows it.
    literal = audited_client.data(
        'query($id: ID!) { auditTrail(entity: "Account", id: $id, first: 1, '
        "orderBy: {field: AT, direction: DESC}) { edges { cursor } } }",
        {"id": record_id},
    )["auditTrail"]
    assert literal["edges"] == [{"cursor": top["edges"][0]["cursor"]}]
    # A cursor of one order does not continue another.
    (error,) = audited_client.errors(
        TRAIL, {"entity": "Account", "id": record_id, "after": top["pageInfo"]["endCursor"]}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


def test_the_trail_is_filtered_by_operation_source_actor_and_time(audited_client, qiao_runtime):
    record_id = updated_five_times(audited_client)
    with qiao_runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        qiao_runtime.records.update(ctx, "account", record_id, {"employees": 7})
    everything = trail(audited_client, record_id)
    assert everything["totalCount"] == 6
    created = trail(audited_client, record_id, filter={"operation": ["CREATE"]})
    assert [e["node"]["operation"] for e in created["edges"]] == ["CREATE"]
    assert created["totalCount"] == 1
    by_cli = trail(audited_client, record_id, filter={"source": ["CLI"]})
    assert [e["node"]["changes"] for e in by_cli["edges"]] == [
        {"employees": {"old": None, "new": 7}}
    ]
    admin_id = everything["edges"][0]["node"]["actorId"]
    by_admin = trail(audited_client, record_id, filter={"actorId": admin_id})
    assert by_admin["totalCount"] == 5
    third_at = everything["edges"][2]["node"]["at"]
    since = trail(audited_client, record_id, filter={"since": third_at})
    assert since["edges"][0]["node"]["sequence"] <= everything["edges"][2]["node"]["sequence"]
    assert since["totalCount"] >= 4
    until = trail(audited_client, record_id, filter={"until": "2000-01-01T00:00:00Z"})
    assert until == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


def test_the_entity_is_named_by_its_type_name(audited_client):
    record_id = updated_five_times(audited_client)
    (error,) = audited_client.errors(TRAIL, {"entity": "account", "id": record_id})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "entity"}
    assert "'Account'" in error["message"]
    (error,) = audited_client.errors(TRAIL, {"entity": "Nothing", "id": record_id})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "entity"}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"first": -1}, "first"),
        ({"last": -3}, "last"),
        ({"first": 501}, "first"),
        ({"first": 2, "last": 2}, "last"),
        ({"after": "bm90IGEgY3Vyc29y"}, "after"),
        ({"last": 2, "before": "!!"}, "before"),
        ({"last": 2, "after": "x"}, "after"),
        ({"first": 2, "before": "x"}, "before"),
        ({"orderBy": [{"direction": "DESC"}, {"direction": "ASC"}]}, "orderBy"),
        ({"entity": "sales_order"}, "entity"),
    ],
)
def test_every_bad_argument_names_its_field(audited_client, arguments, field):
    variables = {"entity": "Account", "id": "x", **arguments}
    (error,) = audited_client.errors(TRAIL, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
