"""Password sign-in, lockout, and token scopes, through the real server."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from qiao.core.audit.log import LOGIN_FAILED, LOGIN_SUCCEEDED
from qiao.core.auth import passwords
from qiao.core.auth.tokens import create_token
from qiao.core.errors import BadUserInput
from qiao.core.storage import system
from qiao.core.testing.client import GraphQLClient

PASSWORD = "苏州-精工-2026!"


@pytest.fixture
def delays(monkeypatch):
    """The waits sign-in would have made, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(passwords.time, "sleep", waited.append)
    return waited


@pytest.fixture
def rep(create, qiao_runtime):
    user = create("user", username="zhang", display_name="张三")
    with qiao_runtime.db.write() as conn:
        passwords.set_password(conn, qiao_runtime.current(), "zhang", PASSWORD)
    return user


def sign_in(server, username, password):
    with httpx.Client(base_url=server.url) as http:
        return http.post("/auth/sign-in", json={"username": username, "password": password})


def login_events(runtime):
    entries = system.audit_entry
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(entries.c.operation)
            .where(entries.c.operation.in_([LOGIN_FAILED, LOGIN_SUCCEEDED]))
            .order_by(entries.c.sequence)
        )
        return [r.operation for r in rows]


def test_a_good_password_gives_a_working_session_token(qiao_server, qiao_runtime, rep, delays):
    response = sign_in(qiao_server, "zhang", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("qiao_") and body["expiresAt"]
    client = GraphQLClient(qiao_server.url, body["token"])
    assert client.data("{ me { username } }") == {"me": {"username": "zhang"}}
    client.close()
    assert login_events(qiao_runtime) == [LOGIN_SUCCEEDED]
    assert delays == []


def test_wrong_names_and_passwords_look_the_same_and_are_slowed(
    qiao_server, qiao_runtime, rep, delays
):
    wrong_password = sign_in(qiao_server, "zhang", "not-the-password")
    unknown_user = sign_in(qiao_server, "nobody", PASSWORD)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["message"] == "the user name or password is wrong"
    assert len(delays) == 2 and all(d > 0 for d in delays)
    assert login_events(qiao_runtime) == [LOGIN_FAILED, LOGIN_FAILED]


def test_repeated_failures_lock_the_account(qiao_server, qiao_runtime, rep, delays):
    for _ in range(passwords.LOCK_AFTER):
        assert sign_in(qiao_server, "zhang", "guess").status_code == 401
    assert delays == sorted(delays) and delays[-1] > delays[0]  # each failure waits longer
    locked = sign_in(qiao_server, "zhang", PASSWORD)
    assert locked.status_code == 401
    assert "locked" in locked.json()["errors"][0]["message"]
    assert login_events(qiao_runtime) == [LOGIN_FAILED] * (passwords.LOCK_AFTER + 1)
    with qiao_runtime.db.write() as conn:  # an administrator resets the password
        passwords.set_password(conn, qiao_runtime.current(), "zhang", PASSWORD + "x")
    assert sign_in(qiao_server, "zhang", PASSWORD + "x").status_code == 200


def test_bad_sign_in_requests(qiao_server, rep):
    with httpx.Client(base_url=qiao_server.url) as http:
        assert http.post("/auth/sign-in", json={"username": "zhang"}).status_code == 400
        assert http.post("/auth/sign-in", content=b"{").status_code == 400


def test_short_passwords_are_refused(qiao_runtime, rep):
    with qiao_runtime.db.write() as conn, pytest.raises(BadUserInput) as caught:
        passwords.set_password(conn, qiao_runtime.current(), "zhang", "short")
    assert caught.value.field == "password"


def test_a_read_only_token_cannot_change_data(qiao_server, qiao_runtime):
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "admin", scope="read")
    client = GraphQLClient(qiao_server.url, token)
    assert client.data("{ accounts { totalCount } }") == {"accounts": {"totalCount": 0}}
    errors = client.errors('mutation { createAccount(input: {name: "x"}) { id } }')
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert client.data("{ accounts { totalCount } }") == {"accounts": {"totalCount": 0}}
    client.close()
