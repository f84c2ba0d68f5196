"""Every malformed input is a 4xx (or a GraphQL input error) with a code, on both databases."""

from __future__ import annotations

import pytest

CREATE = "mutation($n: String!) { createAccount(input: {name: $n}) { id } }"
JSON = {"content-type": "application/json"}


def auth(token):
    return {"authorization": f"Bearer {token}", **JSON}


def code_of(response):
    return response.json()["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "BAD_USER_INPUT", id="deep-json"),
        pytest.param(
            b'{"query": "%s", "variables": {"n": "\\ud800"}}' % CREATE.encode(),
            400,
            "BAD_USER_INPUT",
            id="lone-surrogate-variable",
        ),
        pytest.param(
            b'{"query": "%s", "variables": {"n": "a\\u0000b"}}' % CREATE.encode(),
            400,
            "BAD_USER_INPUT",
            id="nul-variable",
        ),
        pytest.param(
            b'{"query": "%s", "variables": {"n": %s}}'
            % (CREATE.encode(), b'{"a":' * 100 + b"1" + b"}" * 100),
            400,
            "BAD_USER_INPUT",
            id="deep-variable",
        ),
        pytest.param(b'{"query": "\xff\xfe{ me { id } }"}', 400, "BAD_USER_INPUT", id="bad-utf8"),
        pytest.param(b"{", 400, "BAD_USER_INPUT", id="truncated-json"),
        pytest.param(b'["not an object"]', 400, "BAD_USER_INPUT", id="not-an-object"),
        pytest.param(b'{"query": 42}', 400, "BAD_USER_INPUT", id="query-not-a-string"),
    ],
)
def test_malformed_graphql_bodies(http, qiao_admin_token, body, status, code):
    response = http.post("/graphql", content=body, headers=auth(qiao_admin_token))
    assert (response.status_code, code_of(response)) == (status, code)


@pytest.mark.parametrize(
    "literal", ["a\\u0000b", "\\ud800", "\\udfff tail"], ids=["nul", "high", "low"]
)
def test_unstorable_string_literals_in_the_query_are_input_errors(qiao_client, literal):
    errors = qiao_client.errors(
        f'mutation {{ createAccount(input: {{name: "{literal}"}}) {{ id }} }}'
    )
    assert errors[0]["extensions"]["code"] in {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}
    assert qiao_client.data("{ accounts { totalCount } }") == {"accounts": {"totalCount": 0}}


def test_a_body_of_another_type_is_415(http, qiao_admin_token):
    response = http.post(
        "/graphql",
        content=b'{"query": "{ me { id } }"}',
        headers={"authorization": f"Bearer {qiao_admin_token}", "content-type": "text/plain"},
    )
    assert (response.status_code, code_of(response)) == (415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "zh\\u0000ang", "password": "x"}',
        b'{"username": "\\ud800", "password": "x"}',
        b'{"username": "zhang", "password": "\\udc00"}',
        b"[" * 50_000,
    ],
    ids=["nul-username", "surrogate-username", "surrogate-password", "deep"],
)
def test_malformed_sign_ins(http, body):
    response = http.post("/auth/sign-in", content=body, headers=JSON)
    assert (response.status_code, code_of(response)) == (400, "BAD_USER_INPUT")


def test_malformed_get_parameters(http, qiao_admin_token):
    headers = {"authorization": f"Bearer {qiao_admin_token}"}
    for params in (
        {"query": "{ me { id } }", "variables": "{"},
        {"query": "{ me { id } }", "variables": '{"x": "\\u0000"}'},
        {"query": "{ me { id } }", "variables": "[" * 3_000},
        {"query": "{ me { username } }\x00"},
    ):
        response = http.get("/graphql", params=params, headers=headers)
        assert response.status_code in {200, 400}, params
        assert code_of(response) == "BAD_USER_INPUT" or code_of(response).startswith("GRAPHQL_")


def test_instants_before_the_year_1000_round_trip_and_out_of_range_ones_are_refused(
    qiao_client,
):
    """Both found by the fuzzing run: a 3-digit year was stored unreadably on SQLite."""
    create = "mutation($at: DateTime!) { createActivity(input: {kind: CALL, occurredAt: $at}) { occurredAt } }"  # noqa: E501
    made = qiao_client.data(create, {"at": "0999-01-01T00:00:00+00:00"})
    assert made["createActivity"]["occurredAt"].startswith("0999-01-01T00:00:00")
    (error,) = qiao_client.errors(create, {"at": "0001-01-01T00:00:00+08:00"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
