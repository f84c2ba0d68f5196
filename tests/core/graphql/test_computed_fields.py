"""Formula and rollup fields through GraphQL: read, filtered, sorted, paged, defined at run time."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.core.testing.statements import count_statements

MANIFEST = Path(__file__).parents[1] / "records" / "computed.yaml"


class ComputedEntities:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [ComputedEntities()]


CREATE_ACCOUNT = """mutation($input: CfAccountCreateInput!) {
  createCfAccount(input: $input) { id dealTotal dealCount }
}"""
CREATE_DEAL = """mutation($input: CfDealCreateInput!) {
  createCfDeal(input: $input) { id net tag share hugeSquare account { dealTotal } }
}"""


def account(client: GraphQLClient, name: str, region: str | None = None) -> dict[str, Any]:
    values = {"name": name, "region": region}
    return client.data(CREATE_ACCOUNT, {"input": values})["createCfAccount"]


def deal(client: GraphQLClient, account_id: str | None, **values: Any) -> dict[str, Any]:
    data = {"name": "d", "accountId": account_id, "discount": "0", **values}
    return client.data(CREATE_DEAL, {"input": data})["createCfDeal"]


def test_mutations_return_computed_values(qiao_client: GraphQLClient) -> None:
    acct = account(qiao_client, "华东经销", "华东")
    assert acct["dealTotal"] == "0.00" and acct["dealCount"] == 0
    made = deal(
        qiao_client, acct["id"], name="机床", amount="1234.56", discount="0.125", huge="2.5"
    )
    assert made["net"] == "1080.24"
    assert made["tag"] == "华东/机床"
    assert made["share"] == "0.875000"
    assert made["hugeSquare"] == "6.2500"
    assert made["account"] == {"dealTotal": "1234.56"}


def test_computed_fields_are_not_inputs(qiao_client: GraphQLClient) -> None:
    errors = qiao_client.errors(CREATE_DEAL, {"input": {"name": "x", "net": "1.00"}})
    assert "net" in errors[0]["message"]


def test_lists_filter_sort_and_page_by_rollups_and_formulas(qiao_client: GraphQLClient) -> None:
    ids = []
    for i in range(5):
        acct = account(qiao_client, f"acct {i}")
        ids.append(acct["id"])
        for j in range(i % 3 + 1):
            deal(qiao_client, acct["id"], name=f"d{i}{j}", amount=f"{i + j}00.50")
    query = """query($after: String) {
      cfAccounts(first: 2, after: $after, orderBy: [{field: DEAL_TOTAL, direction: DESC}],
                 filter: {dealCount: {gte: 1}}) {
        totalCount
        edges { cursor node { name dealTotal dealCount } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    totals: list[str] = []
    after = None
    while True:
        page = qiao_client.data(query, {"after": after})["cfAccounts"]
        assert page["totalCount"] == 5
        totals += [e["node"]["dealTotal"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    expected = {0: "0.50", 1: "301.00", 2: "901.50", 3: "300.50", 4: "901.00"}
    assert totals == sorted(expected.values(), key=lambda t: -float(t))
    cheap = qiao_client.data(
        """{ cfDeals(filter: {net: {lt: "300"}}, orderBy: [{field: NET, direction: DESC}]) {
             edges { node { name net } } } }"""
    )["cfDeals"]["edges"]
    assert [e["node"]["name"] for e in cheap] == ["d11", "d20", "d10", "d00"]


def test_a_formula_sqlite_cannot_compile_is_read_and_refused_in_filters(
    qiao_client: GraphQLClient, qiao_backend: str
) -> None:
    deal(qiao_client, None, name="big", huge="999999999999.99")
    rows = qiao_client.data("{ cfDeals { edges { node { name hugeSquare } } } }")
    (edge,) = rows["cfDeals"]["edges"]
    assert edge["node"]["hugeSquare"] == "999999999999980000000000.0001"
    query = '{ cfDeals(filter: {hugeSquare: {gt: "1"}}) { edges { node { name } } } }'
    if qiao_backend == "sqlite":
        (error,) = qiao_client.errors(query)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "hugeSquare"
        assert "64-bit" in error["message"]
    else:
        assert qiao_client.data(query)["cfDeals"]["edges"] == [{"node": {"name": "big"}}]


def test_broken_validation_rules_are_bad_user_input_naming_rule_and_field(
    qiao_client: GraphQLClient,
) -> None:
    body = qiao_client.post(
        CREATE_DEAL, {"input": {"name": "x", "amount": "10.00", "discount": "0.5"}}
    )
    (error,) = body["errors"]
    assert error["message"] == "折扣不能超过 30%"
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "discount",
        "rule": "discount_cap",
    }
    assert qiao_client.data("{ cfDeals { totalCount } }")["cfDeals"]["totalCount"] == 0


def test_computed_fields_add_no_statements_per_row(
    qiao_runtime: Runtime, qiao_client: GraphQLClient
) -> None:
    query = """{ cfDeals(first: 100, orderBy: [{field: NET}]) {
        edges { node { net tag daysLeft account { dealTotal dealCount } } } } }"""
    acct = account(qiao_client, "a", "华北")
    counts = []
    for rows in (3, 30):
        while qiao_client.data("{ cfDeals { totalCount } }")["cfDeals"]["totalCount"] < rows:
            deal(qiao_client, acct["id"], amount="1.00")
        with count_statements(qiao_runtime.db.engine) as log:
            edges = qiao_client.data(query)["cfDeals"]["edges"]
        assert len(edges) == rows
        counts.append(log.count)
    assert counts[0] == counts[1] <= 3, counts


def test_admins_define_formula_fields_and_rules_at_run_time(qiao_client: GraphQLClient) -> None:
    add_field = """mutation($definition: JSON!) {
      addField(entity: "cf_deal", definition: $definition) { version field }
    }"""
    doubled = {
        "name": "doubled",
        "type": "decimal",
        "scale": 2,
        "label": {"en": "Doubled", "zh-CN": "双倍"},
        "formula": "amount * 2",
    }
    assert qiao_client.data(add_field, {"definition": doubled})["addField"]["field"] == "doubled"
    made = qiao_client.data(
        """mutation { createCfDeal(input: {name: "x", amount: "4.25"}) { doubled } }"""
    )
    assert made["createCfDeal"] == {"doubled": "8.50"}
    wrong = {**doubled, "name": "wrong", "formula": "amount + name"}
    (error,) = qiao_client.errors(add_field, {"definition": wrong})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert (error["extensions"]["line"], error["extensions"]["column"]) == (1, 8)
    assert "cannot add decimal and text" in error["message"]

    add_rule = """mutation($definition: JSON!) {
      addValidationRule(entity: "cf_deal", definition: $definition) { field }
    }"""
    rule = {"name": "positive", "formula": "amount > 0", "message": "金额须为正", "field": "amount"}
    qiao_client.data(add_rule, {"definition": rule})
    (refused,) = qiao_client.errors(
        """mutation { createCfDeal(input: {name: "y", amount: "-1.00"}) { id } }"""
    )
    assert refused["message"] == "金额须为正"
    assert refused["extensions"]["rule"] == "positive"
    rules = qiao_client.data("{ metadata { entities { name validationRules { name custom } } } }")[
        "metadata"
    ]["entities"]
    (mine,) = [e for e in rules if e["name"] == "cf_deal"]
    assert {"name": "positive", "custom": True} in mine["validationRules"]
    qiao_client.data(
        """mutation { dropValidationRule(entity: "cf_deal", name: "positive") { version } }"""
    )
    qiao_client.data("""mutation { createCfDeal(input: {name: "y", amount: "-1.00"}) { id } }""")
    (plugin_rule,) = qiao_client.errors(
        """mutation { dropValidationRule(entity: "cf_deal", name: "discount_cap") { version } }"""
    )
    assert "declared by a plugin" in plugin_rule["message"]


def test_a_computed_field_is_readable_only_with_everything_it_reads(
    qiao_runtime: Runtime, qiao_server: LiveServer
) -> None:
    records = qiao_runtime.records
    rights = {
        "entities": {"cf_deal": {"read": "all"}, "cf_account": {"read": "all"}},
        "fields": {"cf_account": {"region": "none"}},
    }
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "deal_reader", "rights": rights})
        user = records.create(ctx, "user", {"username": "reader", "display_name": "只读"})
        records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
        account = records.create(ctx, "cf_account", {"name": "A", "region": "华东"})
        records.create(
            ctx,
            "cf_deal",
            {"name": "d", "account": account["id"], "amount": "5.00", "discount": "0"},
        )
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "reader")
    client = GraphQLClient(qiao_server.url, token)
    try:
        assert client.data("{ cfDeals { edges { node { net share } } } }") == {
            "cfDeals": {"edges": [{"node": {"net": "5.00", "share": "1.000000"}}]}
        }
        for query in (
            "{ cfDeals { edges { node { tag } } } }",
            '{ cfDeals(filter: {tag: {eq: "x"}}) { totalCount } }',
            "{ cfDeals(orderBy: [{field: TAG}]) { totalCount } }",
        ):
            (error,) = client.errors(query)
            assert error["extensions"] == {"code": "FORBIDDEN", "field": "tag"}
            assert "computed from cf_account.region" in error["message"]
    finally:
        client.close()


def test_rollups_and_related_formulas_read_only_what_the_reader_may_see(
    qiao_runtime: Runtime, qiao_server: LiveServer, qiao_client: GraphQLClient
) -> None:
    """A rep who reads her own deals sees an account total of her deals only; past an
    account she may not read, a formula over it is null; an admin's system-computed
    total counts every deal, and the metadata says so."""
    records = qiao_runtime.records
    rights = {
        "entities": {
            "cf_deal": {"read": "own", "create": "all"},
            "cf_account": {"read": {"filter": {"region": {"eq": "华东"}}}},
        }
    }
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "own_deals", "rights": rights})
        user = records.create(ctx, "user", {"username": "rep", "display_name": "销售"})
        records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
        east = records.create(ctx, "cf_account", {"name": "东", "region": "华东"})
        north = records.create(ctx, "cf_account", {"name": "北", "region": "华东"})
        for target, amount in ((east, "700.00"), (north, "300.00")):
            records.create(
                ctx, "cf_deal", {"name": "别人的", "account": target["id"], "amount": amount}
            )
    rep = Actor(user_id=user["id"], username="rep", is_admin=False)
    with records.transaction(rep, Source.GRAPHQL) as ctx:
        for target in (east, north):
            records.create(
                ctx,
                "cf_deal",
                {"name": "mine", "account": target["id"], "amount": "5.00", "discount": "0"},
            )
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:  # 北 leaves her view
        records.update(ctx, "cf_account", north["id"], {"region": "华北"})
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "rep")
    client = GraphQLClient(qiao_server.url, token)
    accounts = (
        "{ cfAccounts(orderBy: [{field: NAME}]) { edges { node { name dealTotal dealCount } } } }"
    )
    try:
        assert client.data(accounts)["cfAccounts"]["edges"] == [
            {"node": {"name": "东", "dealTotal": "5.00", "dealCount": 1}}
        ]
        deals = client.data(
            "{ cfDeals(orderBy: [{field: AMOUNT}]) { edges { node { share account { name } } } } }"
        )["cfDeals"]["edges"]
        # Her deal on the account she reads is all of that account she sees; the other
        # account is hidden, so neither it nor a share of its total shows.
        assert deals == [
            {"node": {"share": "1.000000", "account": {"name": "东"}}},
            {"node": {"share": None, "account": None}},
        ]
        with qiao_runtime.db.read() as conn:
            (mine,) = [
                r for r in records.list(conn, "cf_account", actor=rep).records if r["name"] == "东"
            ]
        assert (mine["deal_total"], mine["deal_count"]) == (Decimal("5.00"), 1)

        everything = {
            "name": "all_deal_total",
            "type": "decimal",
            "scale": 2,
            "label": {"en": "All deals", "zh-CN": "全部商机合计"},
            "rollup": {
                "function": "sum",
                "entity": "cf_deal",
                "link": "account",
                "field": "amount",
                "precision": 16,
            },
            "system_computed": True,
        }
        qiao_client.data(
            """mutation($definition: JSON!) {
              addField(entity: "cf_account", definition: $definition) { field } }""",
            {"definition": everything},
        )
        edges = client.data("{ cfAccounts { edges { node { dealTotal allDealTotal } } } }")
        assert edges["cfAccounts"]["edges"] == [
            {"node": {"dealTotal": "5.00", "allDealTotal": "705.00"}}
        ]
        fields = qiao_client.data(
            "{ metadata { entities { name fields { name systemComputed } } } }"
        )["metadata"]["entities"]
        (account_fields,) = [e["fields"] for e in fields if e["name"] == "cf_account"]
        flags = {f["name"]: f["systemComputed"] for f in account_fields}
        assert flags["all_deal_total"] is True and flags["deal_total"] is False
    finally:
        client.close()
