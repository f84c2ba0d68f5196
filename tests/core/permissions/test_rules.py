"""Record rules, field rules and sharing, through GraphQL and the records service."""

from __future__ import annotations

import pytest

from qiao.core.errors import BadUserInput, Forbidden, NotFound
from qiao.core.records.context import Actor, Source

ACCOUNT_OWNERS = {
    "苏州-张三": "zhang",
    "苏州-李四": "li",
    "苏州-陈经理": "chen",
    "宁波-王五": "wang",
    "北京-赵六": "zhao",
    "华东-周总": "zhou",
}
VISIBLE = {
    "zhang": {"苏州-张三", "苏州-李四", "苏州-陈经理"},  # sales_rep reads the team's accounts
    "chen": {"苏州-张三", "苏州-李四", "苏州-陈经理"},  # manager: own team and reports
    "zhou": {"苏州-张三", "苏州-李四", "苏州-陈经理", "宁波-王五", "华东-周总"},  # region
    "zhao": {"北京-赵六"},
    "qian": set(ACCOUNT_OWNERS),  # finance reads all
    "wu": set(),  # the auditor reads no business data (only what is shared with them)
    "nobody": set(),
}


@pytest.fixture
def accounts(org):
    return {
        name: org.create("account", name=name, owner=org.users[owner], annual_revenue="1000.00")
        for name, owner in ACCOUNT_OWNERS.items()
    }


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_lists_and_counts_show_exactly_the_rule_bound_rows(org, accounts, client_for, username):
    client = client_for(username)
    query = "{ accounts(first: 500) { totalCount edges { node { name } } } }"
    data = client.data(query)["accounts"]
    names = {e["node"]["name"] for e in data["edges"]}
    assert names == VISIBLE[username]
    assert data["totalCount"] == len(VISIBLE[username])
    with org.runtime.db.read() as conn:
        page = org.runtime.records.list(
            conn, "account", actor=org.actor(username), first=500, with_total=True
        )
    assert {r["name"] for r in page.records} == VISIBLE[username]
    assert page.total_count == len(VISIBLE[username])


def test_single_records_and_relations_follow_the_same_rules(org, accounts, client_for):
    beijing = accounts["北京-赵六"]
    org.create("contact", name="北京联系人", account=beijing["id"], owner=org.users["zhao"])
    suzhou = accounts["苏州-李四"]
    org.create("contact", name="苏州联系人", account=suzhou["id"], owner=org.users["li"])
    client = client_for("zhang")
    got = client.data("query($id: ID!) { account(id: $id) { name } }", {"id": beijing["id"]})
    assert got == {"account": None}
    contacts = client.data("{ contacts { edges { node { name account { name } } } } }")["contacts"][
        "edges"
    ]
    assert [e["node"] for e in contacts] == [
        {"name": "苏州联系人", "account": {"name": "苏州-李四"}}
    ]
    reverse = client.data(
        "{ accounts(orderBy: [{field: NAME}]) { edges { node { name contacts { totalCount } } } } }"
    )["accounts"]["edges"]
    assert {e["node"]["name"]: e["node"]["contacts"]["totalCount"] for e in reverse} == {
        "苏州-张三": 0,
        "苏州-李四": 1,
        "苏州-陈经理": 0,
    }
    zhao = client_for("zhao")
    assert zhao.data("{ contacts { totalCount } }") == {"contacts": {"totalCount": 1}}


def test_a_to_one_relation_outside_the_rules_reads_as_null(org, accounts, client_for):
    opportunity = org.create(
        "opportunity",
        name="跨区商机",
        account=accounts["北京-赵六"]["id"],
        owner=org.users["zhang"],
    )
    client = client_for("zhang")
    got = client.data(
        "query($id: ID!) { opportunity(id: $id) { name account { name } } }",
        {"id": opportunity["id"]},
    )
    assert got == {"opportunity": {"name": "跨区商机", "account": None}}


def write(org, username, operation, *args):
    records = org.runtime.records
    with records.transaction(org.actor(username), Source.GRAPHQL) as ctx:
        return getattr(records, operation)(ctx, *args)


def test_writes_stay_inside_the_scope(org, accounts):
    records = org.runtime.records
    zhang = org.actor("zhang")
    with records.transaction(zhang, Source.GRAPHQL) as ctx:
        mine = records.create(ctx, "account", {"name": "张三的新客户"})
    assert mine["owner_id"] == org.users["zhang"]  # the creator owns by default

    with pytest.raises(Forbidden, match="outside your scope"):
        write(org, "zhang", "create", "account", {"name": "替别人建", "owner": org.users["zhao"]})
    with pytest.raises(Forbidden, match="may not update"):  # readable (team) but not own
        write(org, "zhang", "update", "account", accounts["苏州-李四"]["id"], {"city": "苏州"})
    with pytest.raises(NotFound):  # not even readable
        write(org, "zhang", "update", "account", accounts["北京-赵六"]["id"], {"city": "北京"})
    with pytest.raises(Forbidden, match="move"):
        write(org, "zhang", "update", "account", mine["id"], {"owner": org.users["zhao"]})
    with pytest.raises(Forbidden, match="delete"):
        write(org, "zhang", "delete", "account", mine["id"])
    with org.runtime.db.read() as conn:
        stored = records.get(conn, "account", mine["id"], actor=Actor.system())
        beijing = records.get(conn, "account", accounts["北京-赵六"]["id"], actor=Actor.system())
    assert stored["owner_id"] == org.users["zhang"]
    assert beijing["city"] is None

    chen = org.actor("chen")  # a manager may reassign within his subtree
    with records.transaction(chen, Source.GRAPHQL) as ctx:
        moved = records.update(ctx, "account", mine["id"], {"owner": org.users["li"]})
    assert moved["owner_id"] == org.users["li"]


def test_field_rules_refuse_reading_and_writing_naming_the_field(org, accounts, client_for):
    engineer = client_for("sun")
    assert engineer.data("{ accounts { totalCount } }") == {
        "accounts": {"totalCount": len(ACCOUNT_OWNERS)}
    }
    for query in (
        "{ accounts { edges { node { name annualRevenue } } } }",
        '{ accounts(filter: {annualRevenue: {gt: "0"}}) { totalCount } }',
        "{ accounts(orderBy: [{field: ANNUAL_REVENUE}]) { totalCount } }",
    ):
        error = engineer.errors(query)[0]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "annualRevenue"}
    rep = client_for("zhang")
    error = rep.errors(
        "mutation($id: ID!) { updateUser(id: $id, input: {isAdmin: true}) { id } }",
        {"id": org.users["zhang"]},
    )[0]
    assert error["extensions"]["code"] in {"FORBIDDEN", "NOT_FOUND"}
    with org.runtime.db.read() as conn:
        assert (
            org.runtime.records.get(conn, "user", org.users["zhang"], actor=Actor.system())[
                "is_admin"
            ]
            is False
        )


def test_the_records_service_refuses_filtering_or_ordering_by_a_hidden_field(org, accounts):
    """A plugin listing as a rule-bound user cannot probe a hidden value through a filter
    or an order: the same refusal as in GraphQL, naming the field."""
    records = org.runtime.records
    engineer = org.actor("sun")
    with org.runtime.db.read() as conn:
        assert len(records.list(conn, "account", actor=engineer).records) == len(ACCOUNT_OWNERS)
        for probe in (
            {"filter": {"annual_revenue": {"gt": "999"}}},
            {"order_by": [{"field": "annual_revenue"}]},
            {"filter": {"or": [{"name": {"eq": "x"}}, {"annual_revenue": {"gt": "0"}}]}},
        ):
            with pytest.raises(Forbidden) as refused:
                records.list(conn, "account", actor=engineer, **probe)
            assert refused.value.field == "annual_revenue"
        readable = records.list(conn, "account", actor=engineer, filter={"name": {"eq": "x"}})
        assert readable.records == []


def test_shared_records_are_visible_and_write_shares_writable(org, accounts, client_for):
    beijing = accounts["北京-赵六"]
    client = client_for("zhang")
    assert client.data("query($id: ID!) { account(id: $id) { name } }", {"id": beijing["id"]}) == {
        "account": None
    }
    org.create("record_share", entity="account", record_id=beijing["id"], user=org.users["zhang"])
    org.runtime.records.permissions.forget()
    assert client.data("query($id: ID!) { account(id: $id) { name } }", {"id": beijing["id"]}) == {
        "account": {"name": "北京-赵六"}
    }
    errors = client.errors(
        'mutation($id: ID!) { updateAccount(id: $id, input: {city: "北京"}) { city } }',
        {"id": beijing["id"]},
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    org.create(
        "record_share",
        entity="account",
        record_id=beijing["id"],
        team=org.teams["suzhou"],
        access="WRITE",
    )
    org.runtime.records.permissions.forget()  # other processes see it within 5 s
    updated = client.data(
        'mutation($id: ID!) { updateAccount(id: $id, input: {city: "北京"}) { city } }',
        {"id": beijing["id"]},
    )
    assert updated == {"updateAccount": {"city": "北京"}}


def test_a_custom_filter_rule(org, accounts, client_for):
    org.create(
        "role",
        name="east_key_accounts",
        rights={
            "entities": {
                "account": {"read": {"filter": {"annual_revenue": {"gte": "5000"}}}},
            }
        },
    )
    with org.runtime.db.read() as conn:
        role = org.runtime.records.list(
            conn, "role", filter={"name": {"eq": "east_key_accounts"}}, actor=Actor.system()
        )
    org.create("role_assignment", user=org.users["nobody"], role=role.records[0]["id"])
    org.create("account", name="大客户", annual_revenue="8000.00", owner=org.users["zhao"])
    client = client_for("nobody")
    data = client.data("{ accounts { totalCount edges { node { name } } } }")
    assert data["accounts"]["totalCount"] == 1
    assert data["accounts"]["edges"][0]["node"]["name"] == "大客户"


def test_malformed_rights_are_refused_naming_the_field(org):
    with pytest.raises(BadUserInput) as caught:
        org.create("role", name="broken", rights={"entities": {"account": {"read": "everyone"}}})
    assert caught.value.field == "rights"
    with org.runtime.db.read() as conn:
        assert not org.runtime.records.list(
            conn, "role", filter={"name": {"eq": "broken"}}, actor=Actor.system()
        ).records


TRAIL = (
    'query($id: ID!) { auditTrail(entity: "Account", id: $id) { edges { node { operation } } } }'
)


def test_audit_trails_follow_the_record_and_the_auditor_reads_all(org, accounts, client_for):
    mine, other = accounts["苏州-张三"]["id"], accounts["北京-赵六"]["id"]
    rep = client_for("zhang")
    trail = rep.data(TRAIL, {"id": mine})["auditTrail"]["edges"]
    assert [e["node"]["operation"] for e in trail] == ["CREATE"]
    assert rep.errors(TRAIL, {"id": other})[0]["extensions"]["code"] == "FORBIDDEN"

    auditor = client_for("wu")
    assert auditor.data(TRAIL, {"id": other})["auditTrail"]["edges"]
    errors = auditor.errors(
        'mutation($id: ID!) { updateAccount(id: $id, input: {city: "北京"}) { id } }',
        {"id": other},
    )
    assert errors[0]["extensions"]["code"] in {"FORBIDDEN", "NOT_FOUND"}


def test_a_relation_may_only_point_at_a_record_the_writer_may_read(org, accounts, client_for):
    """Linking is reading: zhang may not hang his contact on an account he cannot see."""
    hidden = accounts["北京-赵六"]["id"]
    visible = accounts["苏州-李四"]["id"]  # his team's: readable
    zhang = client_for("zhang")
    create = 'mutation($a: ID) { createContact(input: {name: "王工", accountId: $a}) { id } }'
    refused = zhang.errors(create, {"a": hidden})
    assert refused[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "account"}
    assert refused[0]["message"] == f"account: no account with id {hidden}"
    assert refused[0]["message"].replace(hidden, "X") == zhang.errors(
        create, {"a": "01936a00-0000-7000-8000-0000000000ff"}
    )[0]["message"].replace("01936a00-0000-7000-8000-0000000000ff", "X"), (
        "a record he may not read answers exactly as one that does not exist"
    )
    assert zhang.data(create, {"a": visible})["createContact"]["id"]
    records = org.runtime.records
    with records.db.read() as conn:
        linked = records.list(
            conn, "contact", filter={"account_id": {"eq": hidden}}, actor=Actor.system()
        )
    assert linked.records == [], "nothing was linked to the hidden account"


def test_ids_are_made_by_the_server(org, client_for):
    zhang = client_for("zhang")
    chosen = "01936a00-0000-7000-8000-000000000042"
    errors = zhang.errors(
        'mutation($id: ID) { createAccount(input: {id: $id, name: "x"}) { id } }', {"id": chosen}
    )
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "'id'" in errors[0]["message"], "AccountCreateInput has no id to choose"
    with pytest.raises(BadUserInput, match="ids are made by Qiao") as refused:
        write(org, "zhang", "create", "account", {"id": chosen, "name": "x"})
    assert refused.value.field == "id"
