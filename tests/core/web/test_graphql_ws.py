"""GraphQL over WebSocket (graphql-transport-ws) against a live server: the handshake, the
protocol's errors, and record changes delivered with a filter, resumed after a reconnect."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from qiao.core.auth import passwords, tokens
from qiao.core.events import livewake
from qiao.core.runtime import Runtime
from qiao.core.storage import system
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.core.web import graphql_ws
from tests.core.web.ws import Socket

CHANGES = """subscription($filter: ContactFilter, $after: String) {
  contactChanged(filter: $filter, after: $after) {
    cursor operation id record { name title }
  }
}"""
CREATE = "mutation($input: ContactCreateInput!) { createContact(input: $input) { id } }"
UPDATE = """mutation($id: ID!, $input: ContactUpdateInput!) {
  updateContact(id: $id, input: $input) { id }
}"""
DELETE = "mutation($id: ID!) { deleteContact(id: $id) }"
FILTER = {"name": {"startsWith": "订阅"}}


def create(client: GraphQLClient, name: str, title: str = "") -> str:
    contact_id: str = client.data(CREATE, {"input": {"name": name, "title": title}})[
        "createContact"
    ]["id"]
    return contact_id


def change(message: dict, operation_id: str) -> dict:
    assert message["type"] == "next" and message["id"] == operation_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["contactChanged"]


def test_handshake_ping_and_a_query(qiao_server: LiveServer, qiao_admin_token: str) -> None:
    with Socket(qiao_server.url) as ws:
        assert ws.ws.subprotocol == "graphql-transport-ws"
        assert ws.init(qiao_admin_token) == {"type": "connection_ack"}
        ws.send({"type": "ping"})
        assert ws.receive() == {"type": "pong"}
        ws.send({"type": "pong"})  # unasked pongs are allowed, and ignored
        first = ws.subscribe("{ me { username } }")
        assert ws.receive() == {
            "id": first,
            "type": "next",
            "payload": {"data": {"me": {"username": "admin"}}},
        }
        assert ws.receive() == {"id": first, "type": "complete"}
        bad = ws.subscribe("subscription { contactChanged { nope } }")
        error = ws.receive()
        assert error["type"] == "error" and error["id"] == bad
        assert error["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # The upgrade request's Authorization header serves when the payload has none.
    with Socket(qiao_server.url, headers={"Authorization": f"Bearer {qiao_admin_token}"}) as ws:
        assert ws.init(None) == {"type": "connection_ack"}
    over_http = GraphQLClient(qiao_server.url, qiao_admin_token)
    try:
        refused = over_http.errors("subscription { contactChanged { id } }")
        assert refused[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "WebSocket" in refused[0]["message"]
    finally:
        over_http.close()


def test_a_session_opens_a_connection_and_its_revocation_closes_it(
    qiao_server: LiveServer,
    qiao_runtime: Runtime,
    qiao_client: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with qiao_runtime.db.write() as conn:
        passwords.set_password(conn, qiao_runtime.current(), "admin", "correct horse 电池")
    signed_in = httpx.post(
        f"{qiao_server.url}/auth/sign-in",
        json={"username": "admin", "password": "correct horse 电池"},
        timeout=30,
    )
    session = signed_in.json()["token"]
    monkeypatch.setattr(tokens, "CACHE_SECONDS", 0.0)  # revocation seen at the next check
    with Socket(qiao_server.url) as ws:
        assert ws.init(session) == {"type": "connection_ack"}
        sub = ws.subscribe_live(CHANGES)
        create(qiao_client, "会话之前")
        assert change(ws.receive(), sub)["operation"] == "CREATED"
        with qiao_runtime.db.write() as conn:
            token_id = conn.execute(
                select(system.api_token.c.id).where(
                    system.api_token.c.token_hash == tokens.hash_token(session)
                )
            ).scalar_one()
            assert tokens.revoke_token(conn, token_id)
        create(qiao_client, "会话之后")
        code, reason = ws.closed_with()
        assert code == 4403 and "revoked" in reason


def test_protocol_errors_close_with_the_protocol_codes(
    qiao_server: LiveServer, qiao_admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Socket(qiao_server.url, protocol="graphql-ws") as ws:
        assert ws.closed_with() == (4406, "Subprotocol not acceptable")
    with Socket(qiao_server.url) as ws:
        ws.subscribe("{ me { username } }")
        assert ws.closed_with()[0] == 4401
    with Socket(qiao_server.url) as ws:
        ws.send({"type": "connection_init", "payload": {"token": "qiao_not-a-token"}})
        code, reason = ws.closed_with()
        assert code == 4403 and "unknown or revoked" in reason
    with Socket(qiao_server.url) as ws:
        ws.send({"type": "connection_init"})
        assert ws.closed_with()[0] == 4403
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.send({"type": "connection_init", "payload": {"token": qiao_admin_token}})
        assert ws.closed_with() == (4429, "Too many initialisation requests")
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.send({"type": "subscription_start", "id": "1"})
        code, reason = ws.closed_with()
        assert code == 4400 and "subscription_start" in reason
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.ws.send("not json")
        assert ws.closed_with()[0] == 4400
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.subscribe(CHANGES, id="same")
        ws.subscribe(CHANGES, id="same")
        assert ws.closed_with() == (4409, "Subscriber for same already exists")
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.ws.send(json.dumps({"type": "ping", "payload": "x" * graphql_ws.MAX_MESSAGE_BYTES}))
        assert ws.closed_with()[0] == 1009
    monkeypatch.setattr(graphql_ws, "INIT_TIMEOUT", 0.2)
    with Socket(qiao_server.url) as ws:
        assert ws.closed_with() == (4408, "Connection initialisation timeout")
    monkeypatch.setattr(graphql_ws, "MAX_SUBSCRIPTIONS", 2)
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        ws.subscribe(CHANGES)
        ws.subscribe(CHANGES)
        third = ws.subscribe(CHANGES)
        refused = ws.receive()
        assert refused["id"] == third and refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"
        ws.send({"id": "1", "type": "complete"})  # one ends: room for another
        fourth = ws.subscribe(CHANGES)
        ws.send({"type": "ping"})
        assert ws.receive() == {"type": "pong"}, f"{fourth} was refused"


def test_changes_with_a_filter_and_a_resume_after_a_reconnect(
    qiao_server: LiveServer,
    qiao_client: GraphQLClient,
    qiao_admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server keeps one recent change: the resume below reads the feed itself, as one
    # from an old cursor does (the two-process test resumes from the server's window).
    monkeypatch.setattr(livewake, "WINDOW", 1)
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        sub = ws.subscribe_live(CHANGES, {"filter": FILTER})
        other = create(qiao_client, "别的联系人")
        kept = create(qiao_client, "订阅甲", "经理")
        created = change(ws.receive(), sub)
        assert created["operation"] == "CREATED" and created["id"] == kept
        assert created["record"] == {"name": "订阅甲", "title": "经理"}
        qiao_client.data(UPDATE, {"id": kept, "input": {"title": "总监"}})
        updated = change(ws.receive(), sub)
        assert (updated["operation"], updated["record"]["title"]) == ("UPDATED", "总监")
        assert int(updated["cursor"]) > int(created["cursor"])
        qiao_client.data(UPDATE, {"id": other, "input": {"title": "不相干"}})
        qiao_client.data(UPDATE, {"id": kept, "input": {"name": "改名了"}})  # leaves the filter
        removed = change(ws.receive(), sub)
        assert removed == {
            "cursor": removed["cursor"],
            "operation": "REMOVED",
            "id": kept,
            "record": None,
        }
        last_seen = removed["cursor"]

    # Disconnected: three changes commit. The resumed subscription replays them once, in order,
    # each record read as it is when delivered.
    back = create(qiao_client, "订阅乙")
    qiao_client.data(UPDATE, {"id": back, "input": {"title": "助理"}})
    qiao_client.data(DELETE, {"id": kept})
    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        sub = ws.subscribe(CHANGES, {"filter": FILTER, "after": last_seen})
        replayed = [change(ws.receive(), sub) for _ in range(3)]
        assert [(c["operation"], c["id"], c["record"]) for c in replayed] == [
            ("CREATED", back, {"name": "订阅乙", "title": "助理"}),
            ("UPDATED", back, {"name": "订阅乙", "title": "助理"}),
            ("DELETED", kept, None),
        ]
        cursors = [int(c["cursor"]) for c in replayed]
        assert cursors == sorted(cursors) and cursors[0] > int(last_seen)
        live = create(qiao_client, "订阅丙")
        assert change(ws.receive(), sub)["id"] == live
        assert ws.quiet(0.5), "a change was delivered twice"

    with Socket(qiao_server.url) as ws:
        ws.init(qiao_admin_token)
        bad = ws.subscribe(CHANGES, {"after": "999999999"})
        refused = ws.receive()
        assert refused["id"] == bad and refused["type"] == "error"
        assert refused["payload"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
