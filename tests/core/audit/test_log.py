"""What the audit log records for each change, and when it refuses to let a change through."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from qiao.core import audit
from qiao.core.audit import AuditSettings, is_encrypted
from qiao.core.config import Config
from qiao.core.crypto import generate_key_file
from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system

from .conftest import CHECKPOINT_EVERY

REP = Actor(user_id="0193a2b4-0000-7000-8000-000000000001", username="zhang.wei")


def changes(entry):
    return json.loads(entry.changes)


def test_create_update_delete_record_each_field_old_and_new(write, entries, qiao_runtime):
    with qiao_runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        user = qiao_runtime.records.create(
            ctx, "user", {"username": "zhang.wei", "display_name": "张伟", "is_admin": True}
        )
    rep = Actor(user_id=user["id"], username="zhang.wei", is_admin=True)
    account = write(
        lambda r, ctx: r.create(
            ctx, "account", {"name": "苏州精工", "annual_revenue": "12500000.50", "employees": 320}
        ),
        actor=rep,
        request_id="req-create",
    )
    write(
        lambda r, ctx: r.update(ctx, "account", account["id"], {"employees": 350}),
        request_id="req-update",
    )
    write(lambda r, ctx: r.delete(ctx, "account", account["id"]), request_id="req-delete")

    created_user, created, updated, deleted = entries()
    assert created_user.operation == "create" and created_user.entity == "user"
    assert [e.sequence for e in (created, updated, deleted)] == [2, 3, 4]
    assert (created.operation, created.entity, created.record_id) == (
        "create",
        "account",
        account["id"],
    )
    assert (created.actor, created.actor_id, created.source, created.request_id) == (
        "zhang.wei",
        user["id"],
        "cli",
        "req-create",
    )
    assert changes(created)["name"] == {"old": None, "new": "苏州精工"}
    assert changes(created)["annual_revenue"] == {"old": None, "new": "12500000.50"}
    assert changes(updated) == {"employees": {"old": 320, "new": 350}}
    assert (updated.actor, updated.actor_id, updated.request_id) == ("system", None, "req-update")
    assert changes(deleted)["name"] == {"old": "苏州精工", "new": None}
    assert deleted.operation == "delete"
    assert created.at <= updated.at <= deleted.at


def test_an_update_that_changes_nothing_is_not_recorded(write, entries, accounts):
    (account,) = accounts(1)
    write(lambda r, ctx: r.update(ctx, "account", account["id"], {"name": account["name"]}))
    assert [e.operation for e in entries()] == ["create"]


def test_a_refused_write_leaves_no_entry_and_no_gap(write, entries, accounts):
    accounts(1)
    with pytest.raises(BadUserInput):
        write(lambda r, ctx: r.create(ctx, "account", {"name": "x", "employees": -1}))

    def two_then_fail(r, ctx):
        r.create(ctx, "account", {"name": "rolled back 1"})
        r.create(ctx, "account", {"name": "rolled back 2"})
        raise BadUserInput("the caller gives up")

    with pytest.raises(BadUserInput):
        write(two_then_fail)
    accounts(1)
    assert [e.sequence for e in entries()] == [1, 2]


def test_a_write_a_savepoint_undid_leaves_no_entry(write, entries):
    # An automation rule that failed, an import row refused: the savepoint undoes the
    # write, and the entry that was waiting for the commit with it.
    def savepoints(r, ctx):
        kept = r.create(ctx, "account", {"name": "kept"})
        with ctx.connection.begin_nested():
            released = r.create(ctx, "account", {"name": "released"})
        outer = ctx.connection.begin_nested()
        r.create(ctx, "account", {"name": "undone outer"})
        with ctx.connection.begin_nested():
            r.create(ctx, "account", {"name": "undone inner"})
        outer.rollback()
        inner_only = ctx.connection.begin_nested()
        r.update(ctx, "account", kept["id"], {"name": "renamed then undone"})
        inner_only.rollback()
        last = r.create(ctx, "account", {"name": "after"})
        return [kept["id"], released["id"], last["id"]]

    stored = write(savepoints)
    logged = [(e.record_id, e.operation, e.sequence) for e in entries()]
    assert logged == [(id_, "create", n) for n, id_ in enumerate(stored, start=1)]


def test_fields_the_predicate_names_are_redacted(audit_log, write, entries):
    audit_log.redact = lambda entity, field: field.name == "phone"
    account = write(
        lambda r, ctx: r.create(ctx, "account", {"name": "无锡", "phone": "0510 8888 6666"})
    )
    write(lambda r, ctx: r.update(ctx, "account", account["id"], {"phone": "0510 8888 7777"}))
    created, updated = entries()
    assert changes(created)["phone"] == {"redacted": True}
    assert changes(created)["name"] == {"old": None, "new": "无锡"}
    assert changes(updated) == {"phone": {"redacted": True}}
    for entry in (created, updated):
        assert "8888" not in entry.changes


def test_a_field_declared_encrypted_is_redacted_by_default():
    entity = SimpleNamespace(name="contact")
    assert is_encrypted(entity, SimpleNamespace(name="id_card", encrypted=True))
    assert not is_encrypted(entity, SimpleNamespace(name="name", encrypted=False))
    assert not is_encrypted(entity, SimpleNamespace(name="name"))


def test_a_checkpoint_is_stored_at_the_first_entry_and_every_n_entries(
    accounts, qiao_runtime, entries
):
    accounts(2 * CHECKPOINT_EVERY + 1)
    with qiao_runtime.db.read() as conn:
        stored = conn.execute(select(system.audit_checkpoint)).all()
    macs = {e.sequence: e.mac for e in entries()}
    assert [(c.sequence, c.mac) for c in stored] == [
        (1, macs[1]),
        (CHECKPOINT_EVERY, macs[CHECKPOINT_EVERY]),
        (2 * CHECKPOINT_EVERY, macs[2 * CHECKPOINT_EVERY]),
    ]


def test_metadata_and_permission_changes_are_recorded_through_record(
    audit_log, qiao_runtime, entries
):
    with qiao_runtime.db.write() as conn:
        audit.record(
            conn,
            actor=REP,
            source=Source.GRAPHQL,
            request_id="req-meta",
            operation="metadata.add_field",
            entity="account",
            changes={"field": "voltage", "definition": {"type": "decimal", "scale": 1}},
        )
    (stored,) = entries()
    assert (stored.operation, stored.entity, stored.record_id, stored.source) == (
        "metadata.add_field",
        "account",
        None,
        "graphql",
    )
    assert changes(stored)["definition"] == {"scale": 1, "type": "decimal"}


def test_logins_are_recorded_with_who_tried_and_why_it_failed(audit_log, qiao_runtime, entries):
    with qiao_runtime.db.write() as conn:
        audit.record_login(
            conn,
            username="zhang.wei",
            user_id=REP.user_id,
            succeeded=False,
            source=Source.GRAPHQL,
            request_id="req-1",
            reason="wrong password",
        )
        audit.record_login(
            conn,
            username="zhang.wei",
            user_id=REP.user_id,
            succeeded=True,
            source=Source.GRAPHQL,
            request_id="req-2",
        )
    failed, succeeded = entries()
    assert (failed.operation, failed.actor, failed.actor_id, failed.record_id) == (
        "login.failure",
        "zhang.wei",
        None,
        REP.user_id,
    )
    assert changes(failed) == {"username": "zhang.wei", "reason": "wrong password"}
    assert (succeeded.operation, succeeded.actor_id) == ("login.success", REP.user_id)
    assert changes(succeeded) == {"username": "zhang.wei"}


def test_values_without_a_json_type_are_written_exactly(write, entries):
    write(lambda r, ctx: r.create(ctx, "account", {"name": "x", "annual_revenue": Decimal("0.10")}))
    assert changes(entries()[0])["annual_revenue"] == {"old": None, "new": "0.10"}


def test_the_audit_key_is_stored_wrapped_never_plain(accounts, qiao_runtime, audit_log):
    accounts(1)
    with qiao_runtime.db.read() as conn:
        (row,) = conn.execute(select(system.audit_key)).all()
        secret = audit_log.key(conn, row.id)
    assert row.kek_id == "file:v1"
    assert secret not in bytes(row.wrapped)
    assert len(secret) == 32


@pytest.fixture
def runtime_with(qiao_config: Config) -> Iterator[Callable[[AuditSettings], Runtime]]:
    """``runtime_with(settings)``: another process on the same database, audit settings changed."""
    made: list[Runtime] = []

    def _runtime(settings: AuditSettings) -> Runtime:
        made.append(Runtime(dataclasses.replace(qiao_config, audit=settings)))
        return made[-1]

    yield _runtime
    for runtime in made:
        runtime.close()


def create_account(runtime: Runtime, name: str) -> None:
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        runtime.records.create(ctx, "account", {"name": name})


def test_a_database_never_audited_accepts_writes_from_a_process_without_a_key(runtime_with):
    keyless = runtime_with(AuditSettings())  # the only process: the log has no key made
    keyless.start()
    assert audit.bound(keyless) is None
    create_account(keyless, "no audit key configured")
    with keyless.db.read() as conn:
        assert conn.execute(select(system.audit_entry)).all() == []


def test_a_process_without_the_key_may_not_write_to_an_audited_database(accounts, runtime_with):
    accounts(1)
    keyless = runtime_with(AuditSettings())
    assert audit.bind(keyless) is None
    with pytest.raises(ConfigurationError, match="no audit key"):
        create_account(keyless, "unrecorded")
    with keyless.db.write() as conn, pytest.raises(ConfigurationError, match="no audit key"):
        audit.record(
            conn,
            actor=Actor.system(),
            source=Source.SYSTEM,
            request_id="r",
            operation="metadata.add_field",
        )


def test_another_key_file_cannot_write_to_the_log(accounts, runtime_with, qiao_config, tmp_path):
    accounts(1)
    other = tmp_path / "other.key"
    generate_key_file(other)
    stranger = runtime_with(dataclasses.replace(qiao_config.audit, key_file=other))
    audit.bind(stranger)
    with pytest.raises(ConfigurationError, match="cannot be unwrapped"):
        create_account(stranger, "forged")


def test_a_missing_key_file_stops_binding(runtime_with, tmp_path):
    runtime = runtime_with(AuditSettings(key_file=tmp_path / "absent.key"))
    with pytest.raises(ConfigurationError, match=r"absent\.key"):
        audit.bind(runtime)


def test_the_head_follows_the_last_entry(accounts, qiao_runtime, entries):
    accounts(3)
    with qiao_runtime.db.read() as conn:
        head = conn.execute(select(system.audit_head)).one()
    last = entries()[-1]
    assert (head.sequence, head.mac, head.key_id) == (3, last.mac, "audit-1")


def test_changing_the_head_does_not_let_entries_be_overwritten(accounts, qiao_runtime, entries):
    """Moving the head back makes the next append collide with an existing entry."""
    accounts(2)
    with qiao_runtime.db.write() as conn:
        conn.execute(update(system.audit_head).values(sequence=1))
    with pytest.raises(IntegrityError):
        accounts(1)
    assert [e.sequence for e in entries()] == [1, 2]
