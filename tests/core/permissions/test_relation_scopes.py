"""Role scopes that follow relations: a record reachable through its parent or its children.

A rule may name a many-to-one relation (``{"account": {...}}``: the contact's account must
match) or a reverse relation (``{"contacts": {...}}``: at least one contact must match). The
condition becomes a subquery inside the same SQL, so lists, counts, single records and nested
connections agree (docs/permissions.md, "Scopes through relations").
"""

from __future__ import annotations

from qiao.core.records.context import Actor

RIGHTS = {
    "entities": {
        # Contacts of Jiangsu accounts; accounts with a contact named 张三.
        "contact": {"read": {"filter": {"account": {"province": {"eq": "江苏"}}}}},
        "account": {"read": {"filter": {"contacts": {"name": {"eq": "张三"}}}}},
    }
}


def _grant(org, username: str) -> None:
    role = org.create("role", name="through_relations", rights=RIGHTS)
    org.create("role_assignment", user=org.users[username], role=role["id"])


def test_scopes_follow_relations_on_every_read_path(org, client_for):
    suzhou = org.create("account", name="苏州精工", province="江苏")
    ningbo = org.create("account", name="宁波模具", province="浙江")
    org.create("contact", name="张三", account=suzhou["id"])
    org.create("contact", name="李四", account=suzhou["id"])
    hidden = org.create("contact", name="张三", account=ningbo["id"])
    _grant(org, "nobody")
    client = client_for("nobody")

    contacts = client.data("{ contacts { totalCount edges { node { name account { name } } } } }")
    assert contacts["contacts"]["totalCount"] == 2
    assert {e["node"]["name"] for e in contacts["contacts"]["edges"]} == {"张三", "李四"}
    # The account has a contact named 张三, so it is readable through the to-one relation.
    assert {e["node"]["account"]["name"] for e in contacts["contacts"]["edges"]} == {"苏州精工"}

    accounts = client.data(
        "{ accounts { totalCount edges { node { name contacts { totalCount } } } } }"
    )
    # 宁波模具 has a 张三 too, so it is readable; its contacts are not (not in Jiangsu).
    names = {
        e["node"]["name"]: e["node"]["contacts"]["totalCount"]
        for e in accounts["accounts"]["edges"]
    }
    assert names == {"苏州精工": 2, "宁波模具": 0}
    assert client.data("query($id: ID!) { contact(id: $id) { name } }", {"id": hidden["id"]}) == {
        "contact": None
    }


def test_the_records_service_applies_the_same_scope(org):
    jiangsu = org.create("account", name="无锡机床", province="江苏")
    org.create("contact", name="王五", account=jiangsu["id"])
    org.create("contact", name="赵六", account=org.create("account", name="杭州")["id"])
    _grant(org, "nobody")
    with org.runtime.db.read() as conn:
        page = org.runtime.records.list(conn, "contact", with_total=True, actor=org.actor("nobody"))
        everyone = org.runtime.records.list(conn, "contact", with_total=True, actor=Actor.system())
    assert [r["name"] for r in page.records] == ["王五"]
    assert everyone.total_count == 2
