"""Every record change writes its event in the write's own transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.errors import BadUserInput
from qiao.core.events import outbox
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage.system import event
from qiao.core.testing.statements import count_statements

pytestmark = pytest.mark.storage


def events(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(event).order_by(event.c.id))]


def test_create_update_delete_each_write_one_event_with_api_values(
    runtime: Runtime, write: Callable[..., Any]
) -> None:
    before = len(events(runtime))
    account = write(
        lambda r, ctx: r.create(
            ctx, "account", {"name": "华东机床", "annual_revenue": "1234567.80", "employees": 12}
        ),
        Source.CLI,
    )
    write(lambda r, ctx: r.update(ctx, "account", account["id"], {"annual_revenue": "99.5"}))
    write(
        lambda r, ctx: r.create(
            ctx,
            "ticket",
            {"subject": "主轴异响", "resolved_at": dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)},
        )
    )
    write(lambda r, ctx: r.delete(ctx, "account", account["id"]))

    created, updated, ticket_created, deleted = events(runtime)[before:]
    assert (created["entity"], created["record_id"], created["operation"]) == (
        "account",
        account["id"],
        "create",
    )
    assert created["changes"]["annual_revenue"] == [None, "1234567.80"]
    assert created["changes"]["employees"] == [None, 12]
    assert created["changes"]["kind"] == [None, "CUSTOMER"]  # the declared default
    assert (created["actor"], created["actor_id"], created["source"]) == ("system", None, "cli")
    assert len(created["request_id"]) == 32
    assert updated["operation"] == "update"
    assert updated["changes"] == {"annual_revenue": ["1234567.80", "99.50"]}
    assert updated["source"] == "system"
    assert ticket_created["changes"]["resolved_at"] == [None, "2026-03-01T08:30:00.000000+00:00"]
    assert deleted["operation"] == "delete"
    assert deleted["changes"]["name"] == ["华东机床", None]
    assert all(e["dispatched_at"] is None for e in (created, updated, deleted))


def test_the_event_commits_and_rolls_back_with_its_change(runtime: Runtime) -> None:
    before = len(events(runtime))
    records = runtime.records
    with pytest.raises(BadUserInput), records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "account", {"name": "rolled back"})
        records.create(ctx, "account", {"name": ""})  # required: refused
    assert len(events(runtime)) == before
    with records.transaction(Actor.system(), Source.SYSTEM, request_id="req-1") as ctx:
        a = records.create(ctx, "account", {"name": "A"})
        records.create(ctx, "contact", {"name": "张三", "account_id": a["id"]})
    new = events(runtime)[before:]
    assert [(e["entity"], e["request_id"]) for e in new] == [
        ("account", "req-1"),
        ("contact", "req-1"),
    ]


def test_a_transactions_events_are_stored_together_and_a_savepoint_takes_its_own(
    runtime: Runtime,
) -> None:
    before = len(events(runtime))
    records = runtime.records
    with (
        count_statements(runtime.db.engine) as sent,
        records.transaction(Actor.system(), Source.SYSTEM) as ctx,
    ):
        a = records.create(ctx, "account", {"name": "A"})
        with ctx.connection.begin_nested():
            records.create(ctx, "contact", {"name": "张三", "account_id": a["id"]})
        undone = ctx.connection.begin_nested()
        records.create(ctx, "contact", {"name": "李四", "account_id": a["id"]})
        undone.rollback()
        records.update(ctx, "account", a["id"], {"industry": "机械"})
    new = [(e["entity"], e["operation"]) for e in events(runtime)[before:]]
    assert new == [("account", "create"), ("contact", "create"), ("account", "update")]
    assert len([s for s in sent.statements if s.startswith("INSERT INTO qiao_event")]) == 1


def test_an_update_that_changes_nothing_writes_no_event(
    runtime: Runtime, write: Callable[..., Any]
) -> None:
    account = write(lambda r, ctx: r.create(ctx, "account", {"name": "Same"}))
    before = len(events(runtime))
    write(lambda r, ctx: r.update(ctx, "account", account["id"], {"name": "Same"}))
    assert len(events(runtime)) == before


def test_decimal_changes_are_exact_strings(runtime: Runtime, write: Callable[..., Any]) -> None:
    write(lambda r, ctx: r.create(ctx, "account", {"name": "D", "annual_revenue": Decimal("0.1")}))
    assert events(runtime)[-1]["changes"]["annual_revenue"] == [None, "0.10"]


def test_encrypted_fields_are_redacted_in_events() -> None:
    entity = EntityDef.model_validate(
        {
            "name": "patient",
            "plural": "patients",
            "label": {"en": "Patient", "zh-CN": "患者"},
            "fields": [
                {"name": "name", "type": "string", "label": {"en": "Name", "zh-CN": "姓名"}},
                {
                    "name": "id_card",
                    "type": "string",
                    "encrypted": True,
                    "label": {"en": "ID card", "zh-CN": "身份证号"},
                },
            ],
        }
    )
    changes = {"name": (None, "王芳"), "id_card": (None, "110101199003071234")}
    assert outbox.changes_json(entity, changes) == {
        "name": [None, "王芳"],
        "id_card": {"redacted": True},
    }
