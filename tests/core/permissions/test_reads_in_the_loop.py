"""A query asked again is read in the server's event loop on PostgreSQL (docs/graphql.md);
it answers exactly as the first, threaded answer did, under the caller's rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from starlette.applications import Starlette

from qiao.core.config import Config
from qiao.core.testing.client import GraphQLClient

ACCOUNTS = {"苏州-张三": "zhang", "苏州-李四": "li", "北京-赵六": "zhao", "华东-周总": "zhou"}
QUERY = (
    "{ accounts(first: 50, orderBy: [{field: NAME}]) { totalCount"
    " edges { node { name owner { username } } } } }"
)


@pytest.fixture
def qiao_config(qiao_config: Config) -> Config:
    """The metadata version checked once a second, as by default: tests check it on every
    request, which leaves nothing the event loop may answer without a statement."""
    return dataclasses.replace(qiao_config, metadata_check_interval=1.0)


@pytest.fixture
def accounts(org: Any) -> None:
    for name, owner in ACCOUNTS.items():
        org.create("account", name=name, owner=org.users[owner], annual_revenue="1000.00")


def served(app: Starlette) -> int:
    """Reads the app has awaited in its event loop; None where it awaits none (SQLite)."""
    reads = app.state.loop_reads
    return -1 if reads is None else int(reads.served)


def asked_twice(client: GraphQLClient, app: Starlette, query: str) -> tuple[Any, Any, int]:
    """Both answers to ``query`` and how many of them the event loop read."""
    first = client.post(query)
    before = served(app)
    second = client.post(query)
    return first, second, served(app) - before


def names(answer: Any) -> set[str]:
    return {e["node"]["name"] for e in answer["data"]["accounts"]["edges"]}


@pytest.mark.parametrize(
    ("username", "visible"),
    [
        ("zhang", {"苏州-张三", "苏州-李四"}),
        ("zhao", {"北京-赵六"}),
        ("qian", set(ACCOUNTS)),
        ("wu", set()),
    ],
)
def test_the_second_answer_is_read_in_the_loop_and_keeps_the_rules(
    org, accounts, client_for, qiao_app, qiao_backend, username, visible
):
    first, second, in_loop = asked_twice(client_for(username), qiao_app, QUERY)
    assert second == first
    assert names(second) == visible
    assert second["data"]["accounts"]["totalCount"] == len(visible)
    assert in_loop == (1 if qiao_backend == "postgresql" else 0)


def test_a_field_the_caller_may_not_read_is_refused_in_the_loop_too(
    org, accounts, client_for, qiao_app, qiao_backend
):
    engineer = client_for("sun")
    first, second, in_loop = asked_twice(
        engineer, qiao_app, "{ accounts { edges { node { name annualRevenue } } } }"
    )
    assert second == first
    assert second["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "annualRevenue"}
    assert in_loop == (1 if qiao_backend == "postgresql" else 0)


def test_a_new_role_is_read_at_once_not_from_the_loop_s_cached_statement(
    org, accounts, client_for, qiao_app, qiao_backend
):
    client = client_for("zhao")
    first, second, _ = asked_twice(client, qiao_app, QUERY)
    assert names(first) == names(second) == {"北京-赵六"}
    org.create("role_assignment", user=org.users["zhao"], role=org.roles["finance"])
    assert names(client.post(QUERY)) == set(ACCOUNTS)
    assert names(client.post(QUERY)) == set(ACCOUNTS)


def test_variables_choose_their_own_statement_in_the_loop(org, accounts, client_for, qiao_app):
    client = client_for("qian")
    query = "query($n: String!) { accounts(filter: {name: {eq: $n}}) { totalCount } }"
    for name in ("北京-赵六", "苏州-张三", "北京-赵六", "苏州-张三", "无此客户", "无此客户"):
        answer = client.post(query, {"n": name})
        assert answer == {"data": {"accounts": {"totalCount": 1 if name in ACCOUNTS else 0}}}


def test_a_batch_of_queries_asked_again_is_read_in_the_loop_and_a_mutation_is_not(
    org, accounts, client_for, qiao_app, qiao_backend
):
    client = client_for("zhang")
    named = "query($n: String!) { accounts(filter: {name: {eq: $n}}) { totalCount } }"
    queries = [{"query": QUERY}, {"query": named, "variables": {"n": "北京-赵六"}}]

    def batch(operations: list[dict[str, Any]]) -> list[Any]:
        response = client.http.post("/graphql", json=operations)
        assert response.status_code == 200, response.text
        answers: list[Any] = response.json()
        return answers

    first = batch(queries)
    before = served(qiao_app)
    assert batch(queries) == first
    assert served(qiao_app) - before == (2 if qiao_backend == "postgresql" else 0)
    assert names(first[0]) == {"苏州-张三", "苏州-李四"}
    assert first[1] == {"data": {"accounts": {"totalCount": 0}}}  # not zhang's to read

    create = 'mutation { createAccount(input: {name: "苏州-新客户"}) { name } }'
    before = served(qiao_app)
    listed, created = batch([queries[0], {"query": create}])
    assert created == {"data": {"createAccount": {"name": "苏州-新客户"}}}
    assert served(qiao_app) == before  # one operation is not a cached read: all in a thread
    assert names(listed) == {"苏州-张三", "苏州-李四"}
