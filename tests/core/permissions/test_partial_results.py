"""Nullability from the model, partial results for hidden fields, and what metadata tells.

A required field is non-null unless some role can hide it; a field the caller
may not read answers null with a FORBIDDEN error at its path while the rest of
the data stands, in lists, nested relations, by-id lookups and mutation results,
and the SQL never reads it (docs/graphql.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

#: A front desk that sees accounts without their names, and contacts' mobiles masked.
RECEPTIONIST = {
    "entities": {
        "account": {"read": "all", "update": "all"},
        "contact": {"read": "all"},
        "opportunity": {"read": "all"},
    },
    "fields": {
        "account": {"name": "none", "industry": "read"},
        "contact": {"mobile": "masked"},
    },
}
TYPE = (
    "query($name: String!) { __type(name: $name) { fields { name type { kind } } "
    "inputFields { name type { kind } } } }"
)
HIDDEN = {"code": "FORBIDDEN", "field": "name"}


def shapes(client: Any, name: str) -> dict[str, str]:
    """Field name -> NON_NULL or the nullable kind, of a type or an input type."""
    found = client.data(TYPE, {"name": name})["__type"]
    return {f["name"]: f["type"]["kind"] for f in found["fields"] or found["inputFields"]}


@pytest.fixture
def desk(org, client_for):
    """The client of 小徐, who holds the receptionist role."""
    role = org.create("role", name="receptionist", rights=RECEPTIONIST)
    user = org.create("user", username="xu", display_name="前台小徐", team=org.teams["suzhou"])
    org.users["xu"] = user["id"]
    org.create("role_assignment", user=user["id"], role=role["id"])
    return client_for("xu")


@pytest.fixture
def book(org):
    """Two accounts with a contact and an opportunity each."""
    made = {}
    for name, city in (("苏州精密机床", "苏州"), ("宁波液压", "宁波")):
        account = org.create(
            "account", name=name, city=city, industry="机床", owner=org.users["zhang"]
        )
        org.create("contact", name=f"{city}联系人", account=account["id"], mobile="+8613812345678")
        org.create(
            "opportunity",
            name=f"{city}商机",
            account=account["id"],
            amount="1000.00",
            owner=org.users["zhang"],
        )
        made[city] = account
    return made


@pytest.fixture
def statements(org) -> Iterator[list[str]]:
    """The SQL text of every statement the runtime runs while the test does."""
    seen: list[str] = []
    engine = org.runtime.db.engine

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_required_fields_are_non_null_unless_a_role_can_hide_them(org, client_for, qiao_client):
    account = shapes(qiao_client, "Account")
    assert account["name"] == "NON_NULL", "required, and no CRM role hides it"
    assert account["id"] == account["version"] == "NON_NULL"
    assert account["city"] == account["annualRevenue"] == "SCALAR", "not required"
    opportunity = shapes(qiao_client, "Opportunity")
    assert opportunity["accountId"] == opportunity["stage"] == "NON_NULL"
    # A sales rep reads only the team's accounts: an opportunity of theirs may be on an
    # account they cannot read, so the related record itself may be null.
    assert opportunity["account"] == "OBJECT"
    assert shapes(qiao_client, "AccountCreateInput")["name"] == "NON_NULL"
    assert shapes(qiao_client, "AccountUpdateInput")["name"] == "SCALAR"

    role = org.create("role", name="receptionist", rights=RECEPTIONIST)
    assert role["name"] == "receptionist"
    account = shapes(qiao_client, "Account")
    assert account["name"] == "SCALAR", "a role now hides it: null for its holders"
    assert shapes(qiao_client, "Opportunity")["accountId"] == "NON_NULL"
    assert shapes(qiao_client, "AccountCreateInput")["name"] == "NON_NULL"


def test_a_hidden_field_answers_null_with_an_error_at_each_place(desk, book, statements):
    query = "{ accounts(orderBy: [{field: CITY}]) { totalCount edges { node { name city } } } }"
    statements.clear()
    body = desk.post(query)
    assert body["data"] == {
        "accounts": {
            "totalCount": 2,
            "edges": [
                {"node": {"name": None, "city": "宁波"}},
                {"node": {"name": None, "city": "苏州"}},
            ],
        }
    }
    assert body["errors"] == [
        {
            "message": "you may not read Account.name",
            "path": ["accounts", "edges", i, "node", "name"],
            "extensions": HIDDEN,
        }
        for i in (0, 1)
    ]
    # The JSON the database builds and sends holds NULL where the name would be.
    (sql,) = [s for s in statements if "json" in s.lower()]
    assert re.search(r"'name', NULL\b", sql), sql
    assert not re.search(r"'name', \w+\.name\b", sql), sql
    assert "苏州精密机床" not in json.dumps(body, ensure_ascii=False)

    by_id = desk.post(
        "query($id: ID!) { account(id: $id) { city first: name } }", {"id": book["苏州"]["id"]}
    )
    assert by_id["data"] == {"account": {"city": "苏州", "first": None}}
    assert [e["path"] for e in by_id["errors"]] == [["account", "first"]]
    assert by_id["errors"][0]["extensions"] == HIDDEN


def test_hidden_fields_in_nested_relations_and_aliased_edges(desk, book):
    body = desk.post(
        "{ opportunities(orderBy: [{field: NAME}]) { edges { node { name "
        "account { city name contacts { page: edges { node { name account { name } } } "
        "again: edges { node { name } } } } } } } }"
    )
    edges = body["data"]["opportunities"]["edges"]
    assert [e["node"]["name"] for e in edges] == ["宁波商机", "苏州商机"]
    first = edges[0]["node"]["account"]
    assert first["city"] == "宁波" and first["name"] is None
    assert first["contacts"]["page"] == [
        {"node": {"name": "宁波联系人", "account": {"name": None}}}
    ]
    # Aliases of edges answer the same (merged) selection, withheld fields included.
    assert first["contacts"]["again"] == first["contacts"]["page"]
    paths = sorted(tuple(map(str, e["path"])) for e in body["errors"])
    assert paths == sorted(
        (
            *("opportunities", "edges", str(i), "node", "account"),
            *tail,
        )
        for i in (0, 1)
        for tail in (
            ("name",),
            ("contacts", "page", "0", "node", "account", "name"),
            ("contacts", "again", "0", "node", "account", "name"),
        )
    )
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


def test_mixed_queries_and_mutation_results_withhold_the_same_way(desk, book):
    account = book["苏州"]
    mixed = desk.post(
        "query($id: ID!) { me { username } account(id: $id) { name city } }", {"id": account["id"]}
    )
    assert mixed["data"] == {"me": {"username": "xu"}, "account": {"name": None, "city": "苏州"}}
    assert [(e["path"], e["extensions"]) for e in mixed["errors"]] == [
        (["account", "name"], HIDDEN)
    ]
    changed = desk.post(
        'mutation($id: ID!) { moved: updateAccount(id: $id, input: {city: "无锡"}) { name city } }',
        {"id": account["id"]},
    )
    assert changed["data"] == {"moved": {"name": None, "city": "无锡"}}
    assert [(e["path"], e["extensions"]) for e in changed["errors"]] == [
        (["moved", "name"], HIDDEN)
    ]


def test_filtering_by_a_hidden_field_is_still_refused_whole(desk, book):
    body = desk.post('{ accounts(filter: {name: {eq: "宁波液压"}}) { totalCount } }')
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == HIDDEN


def test_metadata_tells_the_caller_what_they_may_do(desk, client_for, qiao_client):
    query = (
        "{ metadata { entities { name access { read create update delete } "
        "fields { name access } } } }"
    )

    def of(client: Any) -> dict[str, Any]:
        entities = client.data(query)["metadata"]["entities"]
        return {e["name"]: e for e in entities}

    mine = of(desk)
    account = {f["name"]: f["access"] for f in mine["account"]["fields"]}
    assert account["name"] == "NONE"
    assert account["industry"] == "READ"
    assert account["city"] == "WRITE"
    contact = {f["name"]: f["access"] for f in mine["contact"]["fields"]}
    assert contact["mobile"] == "MASKED"
    assert mine["account"]["access"] == {
        "read": True,
        "create": False,
        "update": True,
        "delete": False,
    }
    engineer = {f["name"]: f["access"] for f in of(client_for("sun"))["account"]["fields"]}
    assert engineer["annual_revenue"] == "NONE"
    assert engineer["name"] == "WRITE"
    admin = {f["name"]: f["access"] for f in of(qiao_client)["account"]["fields"]}
    assert admin["name"] == admin["annual_revenue"] == "WRITE"
