"""``auditTrail`` under the caller's rules: hidden fields redacted, security events kept apart."""

from __future__ import annotations

import httpx

from qiao.core.auth import passwords
from qiao.core.records.context import Actor, Source

ACCOUNT_TRAIL = (
    'query($id: ID!) { auditTrail(entity: "Account", id: $id) '
    "{ edges { node { operation changes } } } }"
)
USER_TRAIL = (
    'query($id: ID!) { auditTrail(entity: "User", id: $id) { edges { node { operation } } } }'
)
PASSWORD = "宁波-港口-2026!"


def changes(client, record_id):
    edges = client.data(ACCOUNT_TRAIL, {"id": record_id})["auditTrail"]["edges"]
    return [e["node"]["changes"] for e in edges]


def test_a_field_the_caller_may_not_read_is_redacted_in_the_trail(org, client_for):
    owner = org.users["zhang"]
    account = org.create("account", name="常州机床", owner=owner, annual_revenue="9000")
    records = org.runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.update(ctx, "account", account["id"], {"annual_revenue": "12000", "city": "常州"})

    engineer = changes(client_for("sun"), account["id"])  # FORBIDDEN to read annual_revenue
    assert [c["annualRevenue"] for c in engineer] == [{"redacted": True}] * 2
    assert engineer[0]["name"] == {"old": None, "new": "常州机床"}
    assert engineer[1]["city"] == {"old": None, "new": "常州"}
    assert "9000" not in repr(engineer) and "12000" not in repr(engineer)

    finance = changes(client_for("qian"), account["id"])  # reads every account field
    assert finance[1]["annualRevenue"] == {"old": "9000.00", "new": "12000.00"}


def sign_in(server, username, password):
    with httpx.Client(base_url=server.url) as http:
        return http.post("/auth/sign-in", json={"username": username, "password": password})


def test_sign_in_events_are_for_the_auditor_and_the_user_alone(org, client_for, qiao_server):
    with org.runtime.db.write() as conn:
        passwords.set_password(conn, org.runtime.current(), "li", PASSWORD)
    assert sign_in(qiao_server, "li", "not-her-password").status_code == 401
    assert sign_in(qiao_server, "li", PASSWORD).status_code == 200
    li = org.users["li"]

    def operations(username):
        edges = client_for(username).data(USER_TRAIL, {"id": li})["auditTrail"]["edges"]
        return [e["node"]["operation"] for e in edges]

    security = {"LOGIN_FAILURE", "LOGIN_SUCCESS", "PASSWORD_SET", "TOKEN_CREATE"}
    colleague = operations("zhang")  # reads every user record, so the user's trail
    assert colleague and not security & set(colleague)
    assert {"LOGIN_FAILURE", "LOGIN_SUCCESS"} <= set(operations("li"))
    assert {"LOGIN_FAILURE", "LOGIN_SUCCESS"} <= set(operations("wu"))
