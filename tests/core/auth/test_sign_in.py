"""Password sign-in: limits per address and per name, equal answers, and token scopes.

Through the real server where the HTTP answer matters; through
``passwords.sign_in`` where several client addresses are needed (the live
server sees every test request from 127.0.0.1).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time

import httpx
import pytest
from sqlalchemy import select

from qiao.core.audit.log import LOGIN_FAILED, LOGIN_SUCCEEDED
from qiao.core.auth import passwords, throttle
from qiao.core.auth.tokens import create_token
from qiao.core.errors import BadUserInput, TooManyRequests, Unauthenticated
from qiao.core.storage import system
from qiao.core.testing.client import GraphQLClient

PASSWORD = "苏州-精工-2026!"
WRONG = "the user name or password is wrong"


@pytest.fixture
def quick(monkeypatch):
    """Failed sign-ins answer at once, so tests need not wait out the slow-down."""
    monkeypatch.setattr(passwords, "MAX_DELAY", 0.0)


@pytest.fixture
def rep(create, qiao_runtime):
    user = create("user", username="zhang", display_name="张三")
    with qiao_runtime.db.write() as conn:
        passwords.set_password(conn, qiao_runtime.current(), "zhang", PASSWORD)
    return user


@pytest.fixture
def attempt(qiao_runtime):
    """``attempt(name, password, address)``: one sign-in as the endpoint makes it."""

    def _attempt(username, password, address="203.0.113.7"):
        return passwords.sign_in(
            qiao_runtime.db, qiao_runtime.current(), username, password, "req", address
        )

    return _attempt


def sign_in(server, username, password):
    with httpx.Client(base_url=server.url, timeout=120) as http:
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


def test_a_good_password_gives_a_working_session_token(qiao_server, qiao_runtime, rep):
    response = sign_in(qiao_server, "zhang", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("qiao_") and body["expiresAt"]
    client = GraphQLClient(qiao_server.url, body["token"])
    assert client.data("{ me { username } }") == {"me": {"username": "zhang"}}
    client.close()
    assert login_events(qiao_runtime) == [LOGIN_SUCCEEDED]


def test_unknown_and_known_names_get_the_same_answer_after_the_same_work(
    qiao_server, qiao_runtime, rep, quick, attempt, monkeypatch
):
    verified = []
    real_verify = passwords._verify
    monkeypatch.setattr(passwords, "_verify", lambda h, p: verified.append(h) or real_verify(h, p))
    wrong_password = sign_in(qiao_server, "zhang", "not-the-password")
    unknown_user = sign_in(qiao_server, "nobody", PASSWORD)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        (error,) = response.json()["errors"]
        assert (error["message"], error["extensions"]["code"]) == (WRONG, "UNAUTHENTICATED")
    assert len(verified) == 2 and verified[1] == passwords.dummy_hash()  # argon2 ran for both
    assert login_events(qiao_runtime) == [LOGIN_FAILED, LOGIN_FAILED]


def test_failures_for_a_name_slow_its_answers_alike_whether_it_exists_or_not(rep, attempt):
    known = [attempt("zhang", "guess", address=f"198.51.100.{i}").delay for i in range(4)]
    unknown = [attempt("ghost", "guess", address=f"198.51.100.{i}").delay for i in range(4)]
    assert known == unknown == sorted(known) and known[-1] > known[0] > 0


def test_a_stranger_locks_only_their_own_address_out_of_a_name(rep, attempt):
    for _ in range(throttle.LOCK_AFTER):
        assert isinstance(attempt("zhang", "guess").error, Unauthenticated)
    locked = attempt("zhang", PASSWORD)  # even the right password, from that address
    assert isinstance(locked.error, TooManyRequests)
    assert attempt("zhang", PASSWORD, address="192.0.2.10").session is not None  # the owner
    for _ in range(throttle.LOCK_AFTER):
        attempt("ghost", "guess")
    ghost = attempt("ghost", "guess")  # an unknown name answers exactly as a real one
    assert (type(ghost.error), ghost.error.message) == (type(locked.error), locked.error.message)


def test_an_address_with_many_failures_is_refused_for_every_name(rep, attempt):
    for i in range(throttle.ADDRESS_LIMIT):
        attempt(f"guess{i}", "guess")
    refused = attempt("zhang", PASSWORD)
    assert isinstance(refused.error, TooManyRequests) and "this address" in refused.error.message
    assert attempt("zhang", PASSWORD, address="192.0.2.10").session is not None


def test_failures_are_forgotten_after_the_window(rep, attempt, qiao_runtime):
    for _ in range(throttle.LOCK_AFTER):
        attempt("zhang", "guess")
    later = dt.datetime.now(dt.UTC) + throttle.WINDOW + dt.timedelta(minutes=1)
    again = passwords.sign_in(
        qiao_runtime.db, qiao_runtime.current(), "zhang", PASSWORD, "r", "203.0.113.7", later
    )
    assert again.session is not None


def test_an_administrator_unlocks_a_name_for_every_address(rep, attempt, qiao_runtime):
    for _ in range(throttle.LOCK_AFTER):
        attempt("zhang", "guess")
    with qiao_runtime.db.write() as conn:
        assert passwords.unlock(conn, qiao_runtime.current(), "zhang") == 1
    assert attempt("zhang", PASSWORD).session is not None


def test_a_locked_pair_answers_429_over_http(qiao_server, rep, quick):
    for _ in range(throttle.LOCK_AFTER):
        assert sign_in(qiao_server, "zhang", "guess").status_code == 401
    locked = sign_in(qiao_server, "zhang", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"


def test_slowed_sign_ins_do_not_hold_the_threads_other_requests_need(
    qiao_server, qiao_admin_token, qiao_runtime, rep, monkeypatch
):
    """Fifty bad sign-ins, each answered after the longest wait, cannot delay a query.

    Waits are slept on the event loop, so the query is answered while every
    sign-in is still waiting; had they slept in worker threads, the query would
    queue behind them for a free thread. (Passwords are compared without argon2
    here: its cost is bench/hostile_load.py's subject, not this test's.)
    """
    monkeypatch.setattr(passwords, "_verify", lambda _hash, _password: False)
    monkeypatch.setattr(throttle, "LOCK_AFTER", 10_000)
    monkeypatch.setattr(throttle, "ADDRESS_LIMIT", 10_000)
    with qiao_runtime.db.write() as conn:  # earlier failures: every answer waits MAX_DELAY
        for i in range(12):
            throttle.fail(conn, (f"198.51.100.{i}", "zhang"), dt.datetime.now(dt.UTC))
    done: list[float] = []

    def hostile() -> int:
        status = sign_in(qiao_server, "zhang", "guess").status_code
        done.append(time.monotonic())
        return status

    client = GraphQLClient(qiao_server.url, qiao_admin_token)
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(hostile) for _ in range(50)]
        time.sleep(0.5)  # the sign-ins are in, waiting
        assert client.data("{ me { username } }") == {"me": {"username": "admin"}}
        answered = time.monotonic()
        statuses = [f.result() for f in futures]
    client.close()
    assert statuses == [401] * 50
    assert answered < min(done)


def test_bad_sign_in_requests(qiao_server, rep):
    with httpx.Client(base_url=qiao_server.url) as http:
        assert http.post("/auth/sign-in", json={"username": "zhang"}).status_code == 400
        bad_json = http.post(
            "/auth/sign-in", content=b"{", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400
        assert http.post("/auth/sign-in", content=b"{}").status_code == 415


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


def test_an_administrator_unlocks_a_name_over_graphql(
    rep, attempt, qiao_client, qiao_server, qiao_runtime
):
    for _ in range(throttle.LOCK_AFTER):
        attempt("zhang", "guess")
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "zhang")
    user = GraphQLClient(qiao_server.url, token)
    mutation = 'mutation { unlockUser(username: "zhang") }'
    assert user.errors(mutation)[0]["extensions"]["code"] == "FORBIDDEN"
    user.close()
    assert qiao_client.data(mutation) == {"unlockUser": 1}
    assert attempt("zhang", PASSWORD).session is not None
