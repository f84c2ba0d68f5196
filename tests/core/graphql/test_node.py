"""Relay's Node: every entity type implements it; node(id:) and nodes(ids:) find records.

Record ids are unique across entities, so an object's own ``id`` is its node id.
Lookups run under the caller's rules: a record they may not read answers null,
exactly as a record that does not exist, and fields are checked as the entity's
own by-id query checks them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.graphql.plan import MAX_NODES
from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.core.testing.statements import count_statements

pytestmark = pytest.mark.storage

NODE = """query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Account { name city }
    ... on Contact { name account { name } }
  }
}"""
NODES = """query($ids: [ID!]!) {
  nodes(ids: $ids) { id ...on Account { name } ...on Contact { name } }
}"""
#: The same reads run by strawberry (me is not compiled), which must answer alike.
MIXED_NODE = NODE.replace("node(id: $id)", "me { username } node(id: $id)")
MIXED_NODES = NODES.replace("nodes(ids: $ids)", "me { username } nodes(ids: $ids)")
MISSING = "01890000-0000-7000-8000-000000000000"


def create(runtime: Runtime, entity: str, /, **values: Any) -> dict[str, Any]:
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return runtime.records.create(ctx, entity, values)


@pytest.fixture
def records(qiao_runtime: Runtime) -> dict[str, dict[str, Any]]:
    """An account with a contact and an opportunity, and tickets of two teams.

    孙工 (a service engineer of 苏州组) reads every account but not its annual
    revenue, his team's tickets and no opportunities.
    """
    runtime = qiao_runtime
    suzhou = create(runtime, "team", name="苏州组", code="suzhou", kind="TEAM")
    beijing = create(runtime, "team", name="北京组", code="beijing", kind="TEAM")
    sun = create(runtime, "user", username="sun", display_name="孙工", team=suzhou["id"])
    zhao = create(runtime, "user", username="zhao", display_name="赵六", team=beijing["id"])
    with runtime.db.read() as conn:
        roles = runtime.records.list(conn, "role", actor=Actor.system()).records
    role = next(r for r in roles if r["name"] == "service_engineer")
    create(runtime, "role_assignment", user=sun["id"], role=role["id"])
    account = create(runtime, "account", name="常州天工", city="常州", annual_revenue="1000.00")
    return {
        "account": account,
        "contact": create(runtime, "contact", name="李娜", account=account["id"]),
        "opportunity": create(runtime, "opportunity", name="五轴机床", account=account["id"]),
        "own_ticket": create(runtime, "ticket", subject="主轴异响", owner=sun["id"]),
        "other_ticket": create(runtime, "ticket", subject="北京的工单", owner=zhao["id"]),
    }


@pytest.fixture
def engineer(
    qiao_runtime: Runtime, qiao_server: LiveServer, records: dict[str, Any]
) -> Iterator[GraphQLClient]:
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "sun")
    client = GraphQLClient(qiao_server.url, token)
    yield client
    client.close()


@pytest.fixture
def both_paths(qiao_client: GraphQLClient) -> Callable[[str, str, dict[str, Any]], Any]:
    """Runs a query compiled and through strawberry, checks they agree, returns the data."""

    def run(query: str, mixed: str, variables: dict[str, Any]) -> Any:
        compiled = qiao_client.data(query, variables)
        through_strawberry = qiao_client.data(mixed, variables)
        assert through_strawberry.pop("me") == {"username": "admin"}
        assert through_strawberry == compiled
        return compiled

    return run


def test_records_of_any_entity_are_found_by_their_own_ids(
    records, both_paths, qiao_client, qiao_runtime
):
    account, contact = records["account"], records["contact"]
    got = both_paths(NODE, MIXED_NODE, {"id": account["id"]})
    assert got == {
        "node": {"__typename": "Account", "id": account["id"], "name": "常州天工", "city": "常州"}
    }
    got = both_paths(NODE, MIXED_NODE, {"id": contact["id"]})
    assert got == {
        "node": {
            "__typename": "Contact",
            "id": contact["id"],
            "name": "李娜",
            "account": {"name": "常州天工"},
        }
    }
    # The node id is the id every other field and query uses: refetching round-trips.
    listed = qiao_client.data("{ contacts { edges { node { id account { id } } } } }")
    assert listed["contacts"]["edges"][0]["node"] == {
        "id": contact["id"],
        "account": {"id": account["id"]},
    }
    # A fragment on another type adds nothing; one on Node applies to every type.
    fragments = """query($id: ID!) {
      node(id: $id) { ...on Contact { name } ...N }
      account(id: $id) { name ...N }
    }
    fragment N on Node { id }"""
    assert qiao_client.data(fragments, {"id": account["id"]}) == {
        "node": {"id": account["id"]},
        "account": {"name": "常州天工", "id": account["id"]},
    }

    # nodes keeps the order and the length of the ids, repeats and unknown ones included.
    ids = [contact["id"], MISSING, account["id"], contact["id"]]
    assert both_paths(NODES, MIXED_NODES, {"ids": ids}) == {
        "nodes": [
            {"id": contact["id"], "name": "李娜"},
            None,
            {"id": account["id"], "name": "常州天工"},
            {"id": contact["id"], "name": "李娜"},
        ]
    }
    assert both_paths(NODES, MIXED_NODES, {"ids": []}) == {"nodes": []}

    # Each entity is asked once for all the ids: the statements do not grow with them.
    many = [create(qiao_runtime, "account", name=f"客户{i}")["id"] for i in range(30)]
    for n in (2, 30):
        with count_statements(qiao_runtime.db.engine) as log:
            got = qiao_client.data(NODES, {"ids": many[:n]})
        assert [node["name"] for node in got["nodes"]] == [f"客户{i}" for i in range(n)]
        # One finds which entities hold the ids, one reads them: whatever the number of ids.
        assert len([s for s in log.statements if re.search(r"\baccount\b", s)]) == 2


def test_an_entity_created_at_run_time_is_a_node(qiao_client):
    definition = {
        "name": "mould",
        "plural": "moulds",
        "label": {"en": "Mould", "zh-CN": "模具"},
        "fields": [{"name": "code", "type": "string", "required": True, "label": {"en": "Code"}}],
    }
    create_entity = "mutation($d: JSON!) { createEntity(definition: $d) { version } }"
    qiao_client.data(create_entity, {"d": definition})
    mould = qiao_client.data('mutation { createMould(input: {code: "M-07"}) { id } }')[
        "createMould"
    ]
    got = qiao_client.data(
        "query($id: ID!) { node(id: $id) { __typename ... on Mould { code } } }",
        {"id": mould["id"]},
    )
    assert got == {"node": {"__typename": "Mould", "code": "M-07"}}
    got = qiao_client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [mould["id"]]}
    )
    assert got == {"nodes": [{"id": mould["id"]}]}

    # Query.nodes is taken: no entity may be named or pluralised so.
    clash = {"name": "network_node", "plural": "nodes", "label": {"en": "Network node"}}
    errors = qiao_client.errors(create_entity, {"d": clash})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'nodes' is reserved" in errors[0]["message"]


def test_the_callers_rules_apply_and_tell_nothing_of_what_exists(records, engineer):
    query = "query($id: ID!) { node(id: $id) { id ... on Ticket { subject } } }"
    own = records["own_ticket"]
    assert engineer.data(query, {"id": own["id"]}) == {
        "node": {"id": own["id"], "subject": "主轴异响"}
    }
    # Another team's ticket, a record of an entity he may not read, and no record at all
    # are the same answer, byte for byte.
    hidden = [records["other_ticket"]["id"], records["opportunity"]["id"], MISSING]
    answers = [
        engineer.http.post("/graphql", json={"query": query, "variables": {"id": i}}).content
        for i in hidden
    ]
    assert answers == [b'{"data":{"node":null}}'] * 3
    got = engineer.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [*hidden, own["id"]]}
    )
    assert got == {"nodes": [None, None, None, {"id": own["id"]}]}

    # Field rules hold as in the entity's own query: the hidden field answers null with the
    # same error at its place. A record he may not see, or none at all, is null with no
    # error, so the refusal tells nothing of which records exist.
    account = records["account"]
    allowed = "query($id: ID!) { node(id: $id) { ... on Account { name } } }"
    assert engineer.data(allowed, {"id": account["id"]}) == {"node": {"name": "常州天工"}}
    own_query = "query($id: ID!) { account(id: $id) { annualRevenue } }"
    own = engineer.post(own_query, {"id": account["id"]})
    assert own["data"] == {"account": {"annualRevenue": None}}
    (refused,) = own["errors"]
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "annualRevenue"}
    hidden_field = "query($id: ID!) { node(id: $id) { ... on Account { annualRevenue } } }"
    answer = engineer.post(hidden_field, {"id": account["id"]})
    assert answer["data"] == {"node": {"annualRevenue": None}}
    (error,) = answer["errors"]
    assert (error["message"], error["extensions"]) == (refused["message"], refused["extensions"])
    assert error["path"] == ["node", "annualRevenue"]
    for record_id in (records["other_ticket"]["id"], MISSING):
        assert engineer.post(hidden_field, {"id": record_id}) == {"data": {"node": None}}


MALFORMED = [
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "abc"}, "id", "'abc' is not a record id"),
    ("{ node(id: 42) { id } }", {}, "id", "'42' is not a record id"),
    (NODES, {"ids": [MISSING, "01890000"]}, "ids", "ids[1]: '01890000' is not a record id"),
    (NODES, {"ids": [MISSING] * (MAX_NODES + 1)}, "ids", f"at most {MAX_NODES} ids"),
]


def test_malformed_ids_and_too_many_are_bad_user_input(qiao_client):
    for query, variables, field, text in MALFORMED:
        for document in (query, query.replace("{", "{ me { username } ", 1)):
            errors = qiao_client.errors(document, variables)
            assert len(errors) == 1, errors
            assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
            assert text in errors[0]["message"]


def test_a_field_withheld_from_one_type_is_an_error_only_at_its_records_in_nodes(qiao_runtime):
    """Account.phone is hidden, Contact.phone is not: both answer under the key phone, so
    the error belongs at the account's position alone and the contacts keep their phones."""
    reader = create(qiao_runtime, "user", username="zhou", display_name="周读")
    rights = {
        "entities": {"account": {"read": "all"}, "contact": {"read": "all"}},
        "fields": {"account": {"phone": "none"}},
    }
    role = create(qiao_runtime, "role", name="phone_blind", rights=rights)
    create(qiao_runtime, "role_assignment", user=reader["id"], role=role["id"])
    account = create(qiao_runtime, "account", name="常州天工", phone="0519 1234 5678")
    first = create(qiao_runtime, "contact", name="李娜", phone="0519 7654 3210")
    second = create(qiao_runtime, "contact", name="王强", phone="0519 1111 2222")
    service = GraphQLService(qiao_runtime)
    actor = Actor(user_id=reader["id"], username="zhou")
    query = """query($ids: [ID!]!) {
      nodes(ids: $ids) { ... on Account { phone } ... on Contact { phone } } }"""
    ids = [first["id"], account["id"], MISSING, second["id"]]
    for document in (query, query.replace("nodes(ids: $ids)", "me { username } nodes(ids: $ids)")):
        answer = service.execute(actor, {"query": document, "variables": {"ids": ids}})
        result = json.loads(answer) if isinstance(answer, bytes) else answer
        assert result["data"]["nodes"] == [
            {"phone": "+8651976543210"},
            {"phone": None},
            None,
            {"phone": "+8651911112222"},
        ]
        [error] = result["errors"]
        assert error["path"] == ["nodes", 1, "phone"]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "phone"}
