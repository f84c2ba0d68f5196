"""Masks hold at every depth of a query: a contact's colleagues through its account."""

from __future__ import annotations

from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer

#: Sales reps read contacts, their mobiles and e-mail addresses masked.
SALES = {
    "entities": {"account": {"read": "all"}, "contact": {"read": "all"}},
    "fields": {"contact": {"mobile": "masked", "email": "masked"}},
}
COLLEAGUES = (
    "{ contacts(orderBy: [{field: NAME}]) { edges { node { name mobile account { name"
    " contacts(orderBy: [{field: NAME}]) { edges { node { name mobile email } } } } } } } }"
)


def test_a_masked_phone_in_a_list_under_a_relation_in_a_list_is_masked(
    qiao_runtime: Runtime, qiao_server: LiveServer
) -> None:
    """On SQLite this query's masks once went past the parser's stack: an internal error."""
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "sales", "rights": SALES})
        rep = records.create(ctx, "user", {"username": "rep", "display_name": "销售"})
        records.create(ctx, "role_assignment", {"user": rep["id"], "role": role["id"]})
        account = records.create(ctx, "account", {"name": "精工机床"})
        for name, mobile, email in (
            ("王工", "13812345678", "wang@jinggong.cn"),
            ("李工", "+85291234567", None),
        ):
            records.create(
                ctx,
                "contact",
                {"name": name, "mobile": mobile, "email": email, "account": account["id"]},
            )
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "rep")
    client = GraphQLClient(qiao_server.url, token)
    try:
        edges = client.data(COLLEAGUES)["contacts"]["edges"]
    finally:
        client.close()
    colleagues = [
        {"name": "李工", "mobile": "+85*****4567", "email": None},
        {"name": "王工", "mobile": "138****5678", "email": "w***@jinggong.cn"},
    ]
    assert [edge["node"]["mobile"] for edge in edges] == ["+85*****4567", "138****5678"]
    for edge in edges:
        nested = edge["node"]["account"]["contacts"]["edges"]
        assert [colleague["node"] for colleague in nested] == colleagues
