"""user and token commands; tokens checked against the API's authenticator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from qiao.core.auth import passwords, throttle
from qiao.core.auth.tokens import Authenticator
from qiao.core.errors import Unauthenticated
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

Run = Callable[..., Result]


def test_user_create_and_list(run: Run) -> None:
    created = run("user", "create", "li.na", "--display-name", "李娜", "--email", "li@example.com")
    assert "Created member 'li.na'" in created.stdout
    run("user", "create", "boss", "--role", "admin")
    rows = {line.split()[0]: line.split() for line in run("user", "list").stdout.splitlines()}
    assert rows["li.na"] == ["li.na", "李娜", "li@example.com", "member", "yes"]
    assert rows["boss"][3] == "admin"


def test_user_create_duplicate_is_one_line(run: Run) -> None:
    result = run("user", "create", "admin", expect=1)
    assert result.stderr == "Error: another user already has this username\n"
    assert "Traceback" not in result.output


def test_token_create_authenticates_and_revoke_stops_it(run: Run, qiao_runtime: Runtime) -> None:
    secret = run("token", "create", "--user", "admin", "--name", "ci", "--days", "7").stdout
    assert secret.startswith("qiao_")
    assert secret.count("\n") == 1
    actor = Authenticator(qiao_runtime.db, qiao_runtime.current).actor_for(
        "Bearer " + secret.strip()
    )
    assert (actor.username, actor.is_admin) == ("admin", True)

    listed = [line.split() for line in run("token", "list", "--user", "admin").stdout.splitlines()]
    ci = next(row for row in listed if row[2] == "ci")
    assert secret.strip() not in str(listed)
    assert ci[-1] == "-"
    assert run("token", "revoke", ci[0]).stdout == f"Revoked token {ci[0]}.\n"
    with pytest.raises(Unauthenticated):
        Authenticator(qiao_runtime.db, qiao_runtime.current).actor_for("Bearer " + secret.strip())
    assert run("token", "revoke", ci[0], expect=1).stderr.startswith("Error: no active token")


def test_token_without_expiry(run: Run) -> None:
    run("token", "create", "--user", "admin", "--name", "forever", "--no-expiry")
    rows = [line.split() for line in run("token", "list").stdout.splitlines()]
    assert "never" in next(row for row in rows if row[2] == "forever")


def test_token_errors_are_one_line(run: Run) -> None:
    missing = run("token", "create", "--user", "nobody", expect=1)
    assert missing.stderr == "Error: no user named 'nobody'\n"
    assert run("token", "revoke", "not-an-id", expect=1).stderr.count("\n") == 1
    both = run("token", "create", "--user", "admin", "--days", "3", "--no-expiry", expect=2)
    assert "exclude each other" in both.stderr


def test_users_get_roles_and_passwords(run: Run, qiao_runtime: Runtime) -> None:
    run("user", "create", "zhang", "--display-name", "张三", "--role", "sales_rep")
    run("user", "create", "li", "--password", input="苏州-精工-2026!\n苏州-精工-2026!\n")
    run("user", "grant", "li", "finance")
    refused = run("user", "grant", "li", "pirate", expect=1)
    assert "no role named 'pirate'" in refused.stderr
    with qiao_runtime.db.read() as conn:
        rows = qiao_runtime.records.list(
            conn, "role_assignment", first=10, actor=Actor.system()
        ).records
        roles = {
            r["id"]: r["name"]
            for r in qiao_runtime.records.list(conn, "role", actor=Actor.system()).records
        }
        users = {
            r["id"]: r["username"]
            for r in qiao_runtime.records.list(conn, "user", actor=Actor.system()).records
        }
    assert sorted((users[r["user_id"]], roles[r["role_id"]]) for r in rows) == [
        ("li", "finance"),
        ("zhang", "sales_rep"),
    ]
    read_only = run("token", "create", "--user", "zhang", "--scope", "read").stdout.strip()
    actor = Authenticator(qiao_runtime.db, qiao_runtime.current).actor_for("Bearer " + read_only)
    assert actor.read_only and not actor.is_admin


def test_user_unlock_lifts_a_lockout_from_every_address(run: Run, qiao_runtime: Runtime) -> None:
    run("user", "create", "li", "--password", input="苏州-精工-2026!\n苏州-精工-2026!\n")
    for _ in range(throttle.LOCK_AFTER):
        passwords.sign_in(qiao_runtime.db, qiao_runtime.current(), "li", "guess", "r", "10.9.8.7")
    locked = passwords.sign_in(
        qiao_runtime.db, qiao_runtime.current(), "li", "苏州-精工-2026!", "r", "10.9.8.7"
    )
    assert locked.error is not None and locked.error.code == "TOO_MANY_REQUESTS"
    result = run("user", "unlock", "li")
    assert result.stdout == "'li' is unlocked (failure counts cleared for 1 addresses).\n"
    again = passwords.sign_in(
        qiao_runtime.db, qiao_runtime.current(), "li", "苏州-精工-2026!", "r", "10.9.8.7"
    )
    assert again.session is not None
    assert "no user named 'ghost'" in run("user", "unlock", "ghost", expect=1).stderr
