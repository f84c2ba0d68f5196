"""Subscriptions deliver records under the subscriber's rules, read when delivered."""

from __future__ import annotations

from qiao.core.records.context import Actor, Source
from qiao.core.testing.server import LiveServer
from tests.core.web.ws import Socket

#: A hotline seat: reads its team's contacts, their mobiles masked and e-mails not at all.
HOTLINE = {
    "entities": {"contact": {"read": "team"}},
    "fields": {"contact": {"mobile": "masked", "email": "none"}},
}
CHANGES = """subscription {
  contactChanged { operation id record { name mobile email } }
}"""


def test_a_subscriber_gets_only_what_its_rules_let_it_read(org, qiao_server: LiveServer) -> None:
    records = org.runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "hotline", "rights": HOTLINE})
        records.create(ctx, "role_assignment", {"user": org.users["nobody"], "role": role["id"]})
    earlier = org.create("contact", name="苏州老客户", owner=org.users["li"])
    with Socket(qiao_server.url) as ws:
        ws.init(org.token("nobody"))
        sub = ws.subscribe_live(CHANGES)

        beijing = org.create("contact", name="北京客户", owner=org.users["zhao"])
        suzhou = org.create(
            "contact",
            name="苏州客户",
            owner=org.users["zhang"],
            mobile="13812345678",
            email="kehu@example.cn",
        )
        message = ws.receive()
        assert message["id"] == sub, message  # the Beijing contact was never delivered
        assert message["payload"]["data"] == {
            "contactChanged": {
                "operation": "CREATED",
                "id": suzhou["id"],
                "record": {"name": "苏州客户", "mobile": "138****5678", "email": None},
            }
        }
        [error] = message["payload"]["errors"]
        assert error["path"] == ["contactChanged", "record", "email"]
        assert error["extensions"]["code"] == "FORBIDDEN"

        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.update(ctx, "contact", beijing["id"], {"name": "北京客户二"})
            records.update(ctx, "contact", suzhou["id"], {"owner": org.users["zhao"]})
        moved = ws.receive()["payload"]["data"]["contactChanged"]
        assert moved == {"operation": "REMOVED", "id": suzhou["id"], "record": None}

        # Deletes: told of a record its rules reached (from a query, say), not of others'.
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.delete(ctx, "contact", beijing["id"])
            records.delete(ctx, "contact", earlier["id"])
        deleted = ws.receive()["payload"]["data"]["contactChanged"]
        assert deleted == {"operation": "DELETED", "id": earlier["id"], "record": None}

        # A filter on a field the subscriber may not read is refused when subscribing.
        refused = ws.subscribe(
            'subscription { contactChanged(filter: {email: {eq: "kehu@example.cn"}}) { id } }'
        )
        error_message = ws.receive()
        assert error_message["id"] == refused and error_message["type"] == "error"
        assert error_message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        assert ws.quiet(0.3)
