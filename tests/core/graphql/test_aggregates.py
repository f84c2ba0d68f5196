"""``<entity>Aggregate``: groups, counts and exact sums in one statement, under the rules.

Run over HTTP against a live server on SQLite and PostgreSQL. Two sales reps own five
opportunities; the deployment's time zone is Asia/Shanghai, so a record made at
2026-01-31T17:00Z belongs to February.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from qiao.core.auth.tokens import create_token
from qiao.core.graphql.aggregates import _sqlite_local
from qiao.core.graphql.service import GraphQLService
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.types import utc_text
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.statements import count_statements

pytestmark = pytest.mark.storage

#: Reads every opportunity, but not their amounts; contacts' mobiles masked; users'
#: names hidden.
ANALYST = {
    "entities": {
        "opportunity": {"read": "all"},
        "user": {"read": "all"},
        "contact": {"read": "all"},
    },
    "fields": {
        "opportunity": {"amount": "none"},
        "contact": {"mobile": "masked"},
        "user": {"display_name": "none"},
    },
}

BY_OWNER = """{
  opportunityAggregate(groupBy: [{field: OWNER_ID}], orderBy: [{key: OWNER_ID}]) {
    key { ownerId owner { displayName } }
    count
    countDistinct { stage }
    sum { amount probability }
    avg { amount }
    min { closeDate amount }
    max { closeDate }
  }
}"""


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def crm(qiao_runtime: Runtime, qiao_clock: TestClock) -> dict[str, Any]:
    """张三 and 李四 (sales reps) own five opportunities; 钱分析 reads them without amounts."""
    runtime = qiao_runtime
    records = runtime.records
    with runtime.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }

    def create(entity: str, **values: Any) -> dict[str, Any]:
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, entity, values)

    team = create("team", name="苏州组", code="suzhou", kind="TEAM")
    users = {}
    for username, name in (("zhang", "张三"), ("li", "李四"), ("qian", "钱分析")):
        users[username] = create("user", username=username, display_name=name, team=team["id"])
    for username in ("zhang", "li"):
        create("role_assignment", user=users[username]["id"], role=roles["sales_rep"])
    analyst = create("role", name="analyst", rights=ANALYST)
    create("role_assignment", user=users["qian"]["id"], role=analyst["id"])
    account = create("account", name="常州天工", owner=users["zhang"]["id"])
    made = [
        ("zhang", "甲", "1234567.89", 50, "2026-01-15", "NEGOTIATION", "2026-01-31T17:00:00"),
        ("zhang", "乙", "0.01", 30, "2026-01-31", "NEGOTIATION", "2026-01-31T15:59:00"),
        ("zhang", "丙", "100.10", None, "2026-02-03", "CLOSED_WON", "2026-02-10T00:00:00"),
        ("li", "丁", "999999999.99", 90, "2026-02-20", "NEGOTIATION", "2026-03-01T00:00:00"),
        ("li", "戊", None, None, None, "QUALIFICATION", "2026-03-02T00:00:00"),
    ]
    for owner, name, amount, probability, close, stage, created in made:
        qiao_clock.set(utc(created))
        create(
            "opportunity",
            name=name,
            account=account["id"],
            amount=amount,
            probability=probability,
            close_date=close,
            stage=stage,
            owner=users[owner]["id"],
        )
    return {name: user["id"] for name, user in users.items()}


@pytest.fixture
def client_for(
    qiao_runtime: Runtime, qiao_server: LiveServer, crm: dict[str, Any]
) -> Callable[[str], GraphQLClient]:
    opened: list[GraphQLClient] = []

    def open_client(username: str) -> GraphQLClient:
        with qiao_runtime.db.write() as conn:
            token = create_token(conn, qiao_runtime.current(), username)
        client = GraphQLClient(qiao_server.url, token)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def test_groups_by_owner_with_exact_aggregates_in_one_statement(crm, qiao_client, qiao_runtime):
    qiao_client.data(BY_OWNER)  # warm the token and schema caches
    with count_statements(qiao_runtime.db.engine) as log:
        got = qiao_client.data(BY_OWNER)["opportunityAggregate"]
    # Metadata version checks and one statement that groups, joins and builds the JSON.
    assert log.count <= 3, log.statements
    assert [s.count("GROUP BY") for s in log.statements if "GROUP BY" in s] == [1]
    by_owner = {g["key"]["owner"]["displayName"]: g for g in got}
    assert by_owner["张三"] == {
        "key": {"ownerId": crm["zhang"], "owner": {"displayName": "张三"}},
        "count": 3,
        "countDistinct": {"stage": 2},
        # 1234567.89 + 0.01 + 100.10, to the fen (a float sum would be 1234668.0000000002)
        "sum": {"amount": "1234668.00", "probability": "80"},
        "avg": {"amount": "411556.0000"},
        "min": {"closeDate": "2026-01-15", "amount": "0.01"},
        "max": {"closeDate": "2026-02-03"},
    }
    assert by_owner["李四"] == {
        "key": {"ownerId": crm["li"], "owner": {"displayName": "李四"}},
        "count": 2,
        "countDistinct": {"stage": 2},
        "sum": {"amount": "999999999.99", "probability": "90"},
        "avg": {"amount": "999999999.9900"},  # the empty amount is not averaged
        "min": {"closeDate": "2026-02-20", "amount": "999999999.99"},
        "max": {"closeDate": "2026-02-20"},
    }
    # Run by strawberry (next to a hand-written field) the answer is the same.
    mixed = qiao_client.data(BY_OWNER.replace("{\n  opp", "{ me { username }\n  opp", 1))
    assert mixed["opportunityAggregate"] == got


def test_the_documented_example_answers_as_documented(crm, qiao_client):
    """docs/graphql.md's Aggregates example, run against this data."""
    docs = (Path(__file__).parents[3] / "docs" / "graphql.md").read_text()
    section = docs.split("## Aggregates", 1)[1]
    query = section.split("```graphql", 2)[2].split("```", 1)[0]
    answer = section.split("```json", 1)[1].split("```", 1)[0]
    assert qiao_client.post(query) == json.loads(answer)


def test_time_buckets_follow_the_deployment_time_zone(crm, qiao_client):
    query = """query($bucket: TimeBucket) {
      opportunityAggregate(groupBy: [{field: CREATED_AT, bucket: $bucket}]) {
        key { createdAt } count sum { amount }
      }
    }"""
    months = qiao_client.data(query, {"bucket": "MONTH"})["opportunityAggregate"]
    # 2026-01-31T17:00Z is 2026-02-01 01:00 in Shanghai; 15:59Z is still January 31.
    assert months == [
        {"key": {"createdAt": "2026-01-01"}, "count": 1, "sum": {"amount": "0.01"}},
        {"key": {"createdAt": "2026-02-01"}, "count": 2, "sum": {"amount": "1234667.99"}},
        {"key": {"createdAt": "2026-03-01"}, "count": 2, "sum": {"amount": "999999999.99"}},
    ]
    days = qiao_client.data(query, {"bucket": "DAY"})["opportunityAggregate"]
    assert [g["key"]["createdAt"] for g in days] == [
        "2026-01-31",
        "2026-02-01",
        "2026-02-10",
        "2026-03-01",
        "2026-03-02",
    ]
    weeks = qiao_client.data(query, {"bucket": "WEEK"})["opportunityAggregate"]
    # Weeks start on Monday: Sunday 2026-03-01 is in the week before Monday 03-02.
    assert [(g["key"]["createdAt"], g["count"]) for g in weeks] == [
        ("2026-01-26", 2),
        ("2026-02-09", 1),
        ("2026-02-23", 1),
        ("2026-03-02", 1),
    ]
    quarters = qiao_client.data(query, {"bucket": "QUARTER"})["opportunityAggregate"]
    assert [(g["key"]["createdAt"], g["count"]) for g in quarters] == [("2026-01-01", 5)]
    closing = qiao_client.data(
        """{ opportunityAggregate(groupBy: [{field: CLOSE_DATE, bucket: YEAR}, {field: STAGE}],
             orderBy: [{key: CLOSE_DATE, direction: DESC}, {key: STAGE}]) {
             key { closeDate stage } count } }"""
    )["opportunityAggregate"]
    assert closing == [
        {"key": {"closeDate": None, "stage": "QUALIFICATION"}, "count": 1},
        {"key": {"closeDate": "2026-01-01", "stage": "CLOSED_WON"}, "count": 1},
        {"key": {"closeDate": "2026-01-01", "stage": "NEGOTIATION"}, "count": 3},
    ]


def test_a_sales_rep_counts_only_own_opportunities(crm, client_for):
    zhang = client_for("zhang")
    whole = zhang.data("{ opportunityAggregate { count sum { amount } } }")
    assert whole == {"opportunityAggregate": [{"count": 3, "sum": {"amount": "1234668.00"}}]}
    got = zhang.data(BY_OWNER)["opportunityAggregate"]
    assert [g["key"]["ownerId"] for g in got] == [crm["zhang"]]
    filtered = zhang.data("{ opportunityAggregate(filter: {stage: {eq: NEGOTIATION}}) { count } }")
    assert filtered == {"opportunityAggregate": [{"count": 2}]}


def test_fields_the_caller_cannot_read_are_refused(crm, client_for):
    qian = client_for("qian")
    allowed = qian.data(
        "{ opportunityAggregate(groupBy: [{field: STAGE}], orderBy: [{key: STAGE}]) "
        "{ key { stage } count } }"
    )
    assert allowed["opportunityAggregate"][0] == {"key": {"stage": "CLOSED_WON"}, "count": 1}
    refused = [
        "{ opportunityAggregate { sum { amount } } }",
        "{ opportunityAggregate { max { amount } } }",
        "{ opportunityAggregate(groupBy: [{field: AMOUNT}]) { count } }",
        '{ opportunityAggregate(having: {sum: {amount: {gt: "0"}}}) { count } }',
        "{ opportunityAggregate(orderBy: [{aggregate: AVG, field: AMOUNT}]) { count } }",
        '{ opportunityAggregate(filter: {amount: {gt: "0"}}) { count } }',
    ]
    for query in refused:
        result = qian.post(query)
        assert result["data"] is None, query
        assert result["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "amount"}
    # A masked field is read, but not in clear: counting its values would tell them apart.
    for query in (
        "{ contactAggregate { countDistinct { mobile } } }",
        "{ contactAggregate(groupBy: [{field: MOBILE}]) { count } }",
    ):
        result = qian.post(query)
        assert result["data"] is None, query
        assert result["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "mobile"}
    assert qian.data("{ contactAggregate { count } }") == {"contactAggregate": [{"count": 0}]}
    # A related record's hidden field answers null with an error at its place, as in lists.
    owners = qian.post(
        "{ opportunityAggregate(groupBy: [{field: OWNER_ID}], orderBy: [{aggregate: COUNT}]) "
        "{ key { owner { username displayName } } count } }"
    )
    assert owners["data"] == {
        "opportunityAggregate": [
            {"key": {"owner": {"username": "li", "displayName": None}}, "count": 2},
            {"key": {"owner": {"username": "zhang", "displayName": None}}, "count": 3},
        ]
    }
    assert [(e["path"], e["extensions"]) for e in owners["errors"]] == [
        (
            ["opportunityAggregate", i, "key", "owner", "displayName"],
            {"code": "FORBIDDEN", "field": "displayName"},
        )
        for i in (0, 1)
    ]


def test_having_ordering_and_limits(crm, qiao_client):
    query = """query($having: OpportunityGroupHaving, $first: Int) {
      opportunityAggregate(groupBy: [{field: OWNER_ID}], having: $having, first: $first,
                           orderBy: [{aggregate: SUM, field: AMOUNT, direction: DESC}]) {
        key { owner { displayName } } count sum { amount }
      }
    }"""

    def owners(**variables: Any) -> list[str]:
        got = qiao_client.data(query, variables)["opportunityAggregate"]
        return [g["key"]["owner"]["displayName"] for g in got]

    assert owners() == ["李四", "张三"]
    assert owners(first=1) == ["李四"]
    assert owners(having={"count": {"gte": 3}}) == ["张三"]
    # Exact to the fen: 999999999.99 holds ">=" and fails ">" at its own value.
    assert owners(having={"sum": {"amount": {"gte": "999999999.99"}}}) == ["李四"]
    assert owners(having={"sum": {"amount": {"gt": "999999999.99"}}}) == []
    assert owners(having={"or": [{"count": {"eq": 3}}, {"avg": {"amount": {"lt": "1"}}}]}) == [
        "张三"
    ]
    assert owners(having={"not": {"max": {"closeDate": {"gte": "2026-02-20"}}}}) == ["张三"]
    ascending = qiao_client.data(
        "{ opportunityAggregate(groupBy: [{field: STAGE}], "
        "orderBy: [{aggregate: COUNT, direction: DESC}, {key: STAGE}]) { key { stage } count } }"
    )["opportunityAggregate"]
    assert [(g["key"]["stage"], g["count"]) for g in ascending] == [
        ("NEGOTIATION", 3),
        ("CLOSED_WON", 1),
        ("QUALIFICATION", 1),
    ]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (
            "{ opportunityAggregate(orderBy: [{aggregate: SUM, field: NAME}]) { count } }",
            "orderBy",
            "SUM is computed over numbers",
        ),
        (
            "{ opportunityAggregate(groupBy: [{field: STAGE, bucket: MONTH}]) { count } }",
            "groupBy",
            "not a date or date-time",
        ),
        ("{ opportunityAggregate { key { stage } count } }", "groupBy", "add it to groupBy"),
        (
            "{ opportunityAggregate(groupBy: [{field: STAGE}], orderBy: [{key: OWNER_ID}]) "
            "{ count } }",
            "orderBy",
            "not in groupBy",
        ),
        ("{ opportunityAggregate(first: 5000) { count } }", "first", "0 to 1000"),
        ("{ opportunityAggregate(orderBy: [{aggregate: MIN}]) { count } }", "orderBy", "needs"),
    ],
)
def test_bad_input_is_a_clear_error(crm, qiao_client, query, field, words):
    result = qiao_client.post(query)
    assert result["data"] is None
    error = result["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert words in error["message"]


def test_unknown_fields_and_sums_of_text_fail_validation(crm, qiao_client):
    for query in (
        "{ opportunityAggregate { sum { name } } }",
        "{ opportunityAggregate(groupBy: [{field: NO_SUCH_FIELD}]) { count } }",
    ):
        error = qiao_client.errors(query)[0]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_a_formula_aggregates_like_a_stored_field_unless_built_on_a_hidden_one(
    crm, qiao_client, client_for
):
    definition = {
        "name": "weighted",
        "type": "decimal",
        "scale": 2,
        "label": {"en": "Weighted amount", "zh-CN": "加权金额"},
        "formula": "amount * 2",
    }
    qiao_client.data(
        'mutation($d: JSON!) { addField(entity: "opportunity", definition: $d) { field } }',
        {"d": definition},
    )
    got = qiao_client.data(
        "{ opportunityAggregate(groupBy: [{field: OWNER_ID}], "
        "orderBy: [{aggregate: SUM, field: WEIGHTED}]) "
        "{ key { ownerId } sum { weighted amount } max { weighted } } }"
    )["opportunityAggregate"]
    assert got == [
        {
            "key": {"ownerId": crm["zhang"]},
            "sum": {"weighted": "2469336.00", "amount": "1234668.00"},
            "max": {"weighted": "2469135.78"},
        },
        {
            "key": {"ownerId": crm["li"]},
            "sum": {"weighted": "1999999999.98", "amount": "999999999.99"},
            "max": {"weighted": "1999999999.98"},
        },
    ]
    # 钱分析 may not read amounts, so neither their double: a total would tell them.
    for query in (
        "{ opportunityAggregate { sum { weighted } } }",
        "{ opportunityAggregate(groupBy: [{field: WEIGHTED}]) { count } }",
    ):
        result = client_for("qian").post(query)
        assert result["data"] is None
        assert result["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "weighted"}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/New_York"])
def test_sqlite_local_time_follows_every_offset_change_of_the_zone(zone):
    """SQLite has no time zones: the zone's offsets written into the SQL must agree with
    Python's zone database either side of each change (Shanghai kept summer time
    1986-1991; Berlin and New York change twice a year)."""
    tz = ZoneInfo(zone)
    instants = [
        dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)
        for year in (1987, 1990, 2026, 2031)
        for month, day in ((3, 8), (3, 9), (3, 29), (3, 30), (4, 12), (10, 25), (11, 1))
        for hour, minute in ((0, 59), (1, 0), (6, 59), (7, 0), (18, 0))
    ]
    column = sqlalchemy.column("at", sqlalchemy.String)
    local = _sqlite_local(column, tz)
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:
        for instant in instants:
            got = conn.execute(
                sqlalchemy.select(local).select_from(
                    sqlalchemy.select(sqlalchemy.literal(utc_text(instant)).label("at")).subquery()
                )
            ).scalar()
            expected = instant.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
            assert got == expected, (zone, instant)


def test_sums_and_averages_stay_exact_past_what_floats_hold(crm, qiao_client):
    account = qiao_client.data("{ accounts { edges { node { id } } } }")["accounts"]["edges"]
    qiao_client.data(
        """mutation($input: OpportunityCreateInput!) { createOpportunity(input: $input) { id } }""",
        {
            "input": {
                "name": "巨单",
                "accountId": account[0]["node"]["id"],
                "amount": "99999999999999.99",
                "ownerId": crm["li"],
            }
        },
    )
    query = """query($owner: ID!) { opportunityAggregate(filter: {ownerId: {eq: $owner}}) {
      count sum { amount } avg { amount } max { amount } } }"""
    got = qiao_client.data(query, {"owner": crm["li"]})["opportunityAggregate"]
    # Past 2**53 fen, where a float has already lost the last ones.
    assert got == [
        {
            "count": 3,
            "sum": {"amount": "100000999999999.98"},
            "avg": {"amount": "50000499999999.9900"},
            "max": {"amount": "99999999999999.99"},
        }
    ]
    thirds = qiao_client.data(
        '{ opportunityAggregate(filter: {name: {in: ["甲", "乙", "丁"]}}) { avg { amount } } }'
    )["opportunityAggregate"]
    # (1234567.89 + 0.01 + 999999999.99) / 3 = 333744855.963333..., rounded at 4 places.
    assert thirds == [{"avg": {"amount": "333744855.9633"}}]


def test_a_sum_past_sqlite_integers_is_exact_on_postgresql_and_a_clear_error_on_sqlite(
    crm, qiao_runtime
):
    records = qiao_runtime.records
    with qiao_runtime.db.read() as conn:
        account = records.list(conn, "account", actor=Actor.system()).records[0]["id"]
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for _ in range(10):  # 10 x (10**18 - 1) fen passes 2**63 fen
            values = {"name": "巨单", "account": account, "amount": "9999999999999999.99"}
            records.create(ctx, "opportunity", {**values, "owner": crm["zhang"]})
    service = GraphQLService(qiao_runtime)
    huge = 'filter: {name: {eq: "巨单"}}'
    for query, exact in (
        (f"{{ opportunityAggregate({huge}) {{ sum {{ amount }} }} }}", "99999999999999999.90"),
        (f"{{ opportunityAggregate({huge}) {{ avg {{ amount }} }} }}", "9999999999999999.9900"),
    ):
        answer = service.execute(Actor.system(), {"query": query})
        result = json.loads(answer) if isinstance(answer, bytes) else answer
        if qiao_runtime.db.dialect == "postgresql":
            assert "errors" not in result
            [group] = result["data"]["opportunityAggregate"]
            assert list(group.values()) == [{"amount": exact}]
            continue
        assert result["data"] is None
        [error] = result["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT"}
        assert "2⁶³" in error["message"] and "SQLite" in error["message"]


def test_an_enum_key_is_named_as_the_schema_names_it(qiao_client):
    """The stored ``zh_CN`` groups as ``ZH_CN``, the value's name in the schema."""
    groups = qiao_client.data(
        "{ userAggregate(groupBy: [{field: LOCALE}]) { key { locale } count } }"
    )["userAggregate"]
    assert groups == [{"key": {"locale": "ZH_CN"}, "count": 1}]
