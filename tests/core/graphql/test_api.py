"""The generated GraphQL API, through a real uvicorn server, on both backends."""

from __future__ import annotations

import httpx
import pytest

ACCOUNT_FIELDS = "id name city annualRevenue kind version createdAt"


def create_account(client, **values):
    data = client.data(
        "mutation($input: AccountCreateInput!) "
        f"{{ createAccount(input: $input) {{ {ACCOUNT_FIELDS} }} }}",
        {"input": values},
    )
    return data["createAccount"]


def codes(errors):
    return [e["extensions"]["code"] for e in errors]


def test_no_token_is_unauthenticated_with_http_200(qiao_anonymous_client):
    errors = qiao_anonymous_client.errors("{ accounts { totalCount } }")
    assert codes(errors) == ["UNAUTHENTICATED"]
    assert "Bearer" in errors[0]["message"]


def test_an_unknown_token_is_unauthenticated(qiao_server):
    with httpx.Client(base_url=qiao_server.url) as http:
        response = http.post(
            "/graphql",
            json={"query": "{ me { username } }"},
            headers={"authorization": "Bearer qiao_nope"},
        )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_me(qiao_client):
    assert qiao_client.data("{ me { username isAdmin } }") == {
        "me": {"username": "admin", "isAdmin": True}
    }


def test_create_read_update_delete(qiao_client):
    account = create_account(
        qiao_client, name="深圳华强电子", city="深圳", annualRevenue="88000000.00", kind="CUSTOMER"
    )
    assert account["annualRevenue"] == "88000000.00"
    assert account["version"] == 1
    assert account["createdAt"].endswith("+00:00")
    got = qiao_client.data(
        "query($id: ID!) { account(id: $id) { name city } }", {"id": account["id"]}
    )
    assert got == {"account": {"name": "深圳华强电子", "city": "深圳"}}
    updated = qiao_client.data(
        """mutation($id: ID!) { updateAccount(id: $id, input: {city: "广州"}, expectedVersion: 1)
           { city version } }""",
        {"id": account["id"]},
    )
    assert updated["updateAccount"] == {"city": "广州", "version": 2}
    stale = qiao_client.errors(
        """mutation($id: ID!) { updateAccount(id: $id, input: {city: "北京"}, expectedVersion: 1)
           { city } }""",
        {"id": account["id"]},
    )
    assert codes(stale) == ["CONFLICT"]
    deleted = qiao_client.data(
        "mutation($id: ID!) { deleteAccount(id: $id) }", {"id": account["id"]}
    )
    assert deleted == {"deleteAccount": account["id"]}
    assert qiao_client.data(
        "query($id: ID!) { account(id: $id) { id } }", {"id": account["id"]}
    ) == {"account": None}


@pytest.mark.parametrize(
    ("input_", "field", "code"),
    [
        ({"name": "x", "annualRevenue": "1.999"}, "annualRevenue", "BAD_USER_INPUT"),
        ({"name": "x" * 201}, "name", "BAD_USER_INPUT"),
        ({"name": "x", "employees": -5}, "employees", "BAD_USER_INPUT"),
        ({"name": "x", "phone": "call me"}, "phone", "BAD_USER_INPUT"),
        (
            {"name": "x", "parentId": "01900000-0000-7000-8000-000000000000"},
            "parent",
            "BAD_USER_INPUT",
        ),
    ],
)
def test_bad_mutation_input_names_the_field_and_writes_nothing(qiao_client, input_, field, code):
    errors = qiao_client.errors(
        "mutation($input: AccountCreateInput!) { createAccount(input: $input) { id } }",
        {"input": input_},
    )
    assert codes(errors) == [code]
    assert errors[0]["extensions"]["field"] in {field, field + "Id"}
    assert qiao_client.data("{ accounts { totalCount } }") == {"accounts": {"totalCount": 0}}


def test_type_errors_are_validation_errors_without_tracebacks(qiao_client):
    errors = qiao_client.errors(
        'mutation { createAccount(input: {name: "x", employees: "many"}) { id } }'
    )
    assert codes(errors) == ["GRAPHQL_VALIDATION_FAILED"]
    errors = qiao_client.errors("{ accounts { edges { node { colour } } } }")
    assert "colour" in errors[0]["message"]
    for error in errors:
        assert "Traceback" not in str(error)


def test_filters_order_and_pagination(qiao_client):
    for i, city in enumerate(["苏州", "无锡", "苏州", "常州", "苏州"]):
        create_account(qiao_client, name=f"客户{i}", city=city, annualRevenue=f"{i}000.00")
    query = """query($after: String) {
      accounts(filter: {city: {eq: "苏州"}}, orderBy: [{field: ANNUAL_REVENUE, direction: DESC}],
               first: 2, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor node { name } }
      }
    }"""
    page = qiao_client.data(query)["accounts"]
    assert page["totalCount"] == 3
    assert [e["node"]["name"] for e in page["edges"]] == ["客户4", "客户2"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = qiao_client.data(query, {"after": page["pageInfo"]["endCursor"]})["accounts"]
    assert [e["node"]["name"] for e in rest["edges"]] == ["客户0"]
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["edges"][-1]["cursor"],
    }
    combined = qiao_client.data(
        """{ accounts(filter: {or: [{city: {eq: "无锡"}}, {name: {startsWith: "客户3"}}],
                             not: {annualRevenue: {gte: "3000"}}}) { edges { node { name } } } }"""
    )
    assert [e["node"]["name"] for e in combined["accounts"]["edges"]] == ["客户1"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("{ accounts(first: 501) { totalCount } }", "maximum of 500"),
        ('{ accounts(after: "not-a-cursor") { totalCount } }', "malformed cursor"),
        ("{ accounts(first: 1, last: 1) { totalCount } }", "either first or last"),
        ('{ account(id: "nope") { id } }', "not a record id"),
    ],
)
def test_bad_read_arguments_are_bad_user_input(qiao_client, query, fragment):
    errors = qiao_client.errors(query)
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert fragment in errors[0]["message"]


def test_relations_both_ways(qiao_client):
    account = create_account(qiao_client, name="常州天工")
    for name in ("张伟", "李娜"):
        qiao_client.data(
            "mutation($a: ID!, $n: String!) "
            "{ createContact(input: {name: $n, accountId: $a}) { id } }",
            {"a": account["id"], "n": name},
        )
    data = qiao_client.data(
        """{ contacts(orderBy: [{field: NAME}]) { edges { node { name account { name } } } }
             accounts { edges { node { contacts(filter: {name: {eq: "李娜"}}) {
               totalCount edges { node { name } } } } } } }"""
    )
    assert [e["node"] for e in data["contacts"]["edges"]] == [
        {"name": "张伟", "account": {"name": "常州天工"}},
        {"name": "李娜", "account": {"name": "常州天工"}},
    ]
    nested = data["accounts"]["edges"][0]["node"]["contacts"]
    assert nested == {"totalCount": 1, "edges": [{"node": {"name": "李娜"}}]}


def test_compiled_and_strawberry_paths_answer_alike(qiao_client):
    """A query mixing a plugin-style field (me) runs through strawberry; the data must match."""
    create_account(qiao_client, name="一致性", city="杭州")
    query = "accounts { totalCount edges { node { name city contacts { totalCount } } } }"
    compiled = qiao_client.data("{ " + query + " }")
    mixed = qiao_client.data("{ me { username } " + query + " }")
    assert mixed["accounts"] == compiled["accounts"]


def test_limits_on_depth_aliases_and_size(qiao_client):
    deep = "{ accounts { edges { node { " + "parent { " * 12 + "id" + " }" * 12 + " } } } }"
    assert "levels deep" in qiao_client.errors(deep)[0]["message"]
    aliases = "{ " + " ".join(f"a{i}: me {{ username }}" for i in range(31)) + " }"
    assert "aliases" in qiao_client.errors(aliases)[0]["message"]
    many_tokens = "{ " + "me { username } " * 3000 + "}"
    assert qiao_client.errors(many_tokens)
    contacts = "contacts(first: 500) { edges { node { id } } }"
    costly = f"{{ accounts(first: 500) {{ edges {{ node {{ {contacts} }} }} }} }}"
    errors = qiao_client.errors(costly)
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "records" in errors[0]["message"]


def test_malformed_requests_get_clear_errors(qiao_server, qiao_admin_token):
    headers = {"authorization": f"Bearer {qiao_admin_token}"}
    with httpx.Client(base_url=qiao_server.url, headers=headers) as http:
        check_malformed_requests(http)


def check_malformed_requests(http):
    not_json = http.post("/graphql", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["errors"][0]["message"]
    no_query = http.post("/graphql", json={"variables": {}})
    assert no_query.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    syntax = http.post("/graphql", json={"query": "{ accounts { "})
    assert syntax.status_code == 200
    assert "Syntax Error" in syntax.json()["errors"][0]["message"]


def test_graphiql_health_and_readiness(qiao_server):
    with httpx.Client(base_url=qiao_server.url) as http:
        check_graphiql_health_and_readiness(http)


def check_graphiql_health_and_readiness(http):
    page = http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}


def test_backward_pages_and_page_boundaries(qiao_client):
    for name in "ABCDE":
        create_account(qiao_client, name=name)
    query = """query($last: Int, $before: String, $first: Int, $after: String) {
      accounts(orderBy: [{field: NAME}], last: $last, before: $before, first: $first,
               after: $after) {
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { node { name } }
      }
    }"""

    def page(**variables):
        result = qiao_client.data(query, variables)["accounts"]
        return [e["node"]["name"] for e in result["edges"]], result["pageInfo"]

    names, info = page(last=2)
    assert names == ["D", "E"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, False)
    names, info = page(last=2, before=info["startCursor"])
    assert names == ["B", "C"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, True)
    names, info = page(last=2, before=info["startCursor"])
    assert names == ["A"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (False, True)

    names, info = page(first=5)
    assert names == list("ABCDE")
    assert info["hasNextPage"] is False
    names, info = page(first=4)
    assert info["hasNextPage"] is True
    names, info = page(first=4, after=info["endCursor"])
    assert names == ["E"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, False)
    names, info = page(first=0)
    assert names == []
    assert info["hasNextPage"] is True


@pytest.mark.parametrize(
    "input_",
    [
        {"name": "x", "employees": "many"},
        {"name": "x", "colour": "red"},
        {"name": "x", "annualRevenue": "lots"},
        {"name": "x", "createdAt": "2026-01-01"},
    ],
)
def test_bad_variables_are_input_errors_not_internal_ones(qiao_client, input_):
    errors = qiao_client.errors(
        "mutation($input: AccountCreateInput!) { createAccount(input: $input) { id } }",
        {"input": input_},
    )
    assert codes(errors) in (["BAD_USER_INPUT"], ["GRAPHQL_VALIDATION_FAILED"])
    assert "internal" not in errors[0]["message"]
    assert "$input" in errors[0]["message"]
