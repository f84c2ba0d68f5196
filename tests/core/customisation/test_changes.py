"""Run-time metadata changes through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
from sqlalchemy import inspect, select

from qiao.core.customisation.changes import MetadataChanges
from qiao.core.errors import Conflict, Forbidden, MetadataError, NotFound
from qiao.core.metadata import store
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

ADMIN = Actor.system()
LABEL = {"en": "Label", "zh-CN": "标签"}


def field(name: str, type_: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": LABEL, **options}


@pytest.fixture
def changes(qiao_runtime: Runtime) -> MetadataChanges:
    return MetadataChanges(qiao_runtime)


def create(runtime: Runtime, entity: str, **values: Any) -> str:
    with runtime.records.transaction(ADMIN, Source.SYSTEM) as ctx:
        record_id: str = runtime.records.create(ctx, entity, values)["id"]
    return record_id


def column_values(runtime: Runtime, entity: str, column: str) -> dict[str, Any]:
    table = runtime.current().table(entity)
    with runtime.db.read() as conn:
        return dict(conn.execute(select(table.c.id, table.c[column])).all())


def columns(runtime: Runtime, entity: str) -> set[str]:
    with runtime.db.read() as conn:
        return {c["name"] for c in inspect(conn).get_columns(entity)}


def version(runtime: Runtime) -> int:
    with runtime.db.read() as conn:
        return store.read_version(conn)


def test_add_field_fills_existing_records_and_versions(
    qiao_runtime: Runtime, changes: MetadataChanges
) -> None:
    first = create(qiao_runtime, "account", name="甲")
    second = create(qiao_runtime, "account", name="乙")
    change = changes.add_field(
        "account", field("region_code", "string", required=True, default="EAST"), actor=ADMIN
    )
    assert change.version == 1
    assert qiao_runtime.current().version == 1
    assert column_values(qiao_runtime, "account", "region_code") == {
        first: "EAST",
        second: "EAST",
    }
    changes.add_field("account", field("voltage", "decimal", scale=1), actor=ADMIN, note="why")
    with qiao_runtime.db.read() as conn:
        rows = store.history(conn)
    assert [(r["version"], r["operation"], r["field"], r["note"]) for r in rows] == [
        (2, "add_field", "voltage", "why"),
        (1, "add_field", "region_code", None),
    ]


def test_required_field_needs_a_default_when_records_exist(
    qiao_runtime: Runtime, changes: MetadataChanges
) -> None:
    create(qiao_runtime, "account", name="甲")
    with pytest.raises(MetadataError, match="needs a default") as raised:
        changes.add_field("account", field("code", "string", required=True), actor=ADMIN)
    assert raised.value.field == "code"
    assert "code" not in columns(qiao_runtime, "account")


@pytest.mark.parametrize(
    ("before", "after", "stored", "expected"),
    [
        (field("f", "string"), field("f", "text"), "长文本", "长文本"),
        (field("f", "integer"), field("f", "decimal", scale=2), 42, decimal.Decimal("42.00")),
        (field("f", "string"), field("f", "integer"), " 17 ", 17),
        (field("f", "text"), field("f", "string", max_length=5), "abc", "abc"),
        (field("f", "decimal", scale=3), field("f", "decimal", scale=1), "1.200", "1.2"),
        (field("f", "integer"), field("f", "string", max_length=10), 7, "7"),
    ],
)
def test_lossless_type_changes_convert_the_data(
    qiao_runtime: Runtime,
    changes: MetadataChanges,
    before: dict[str, Any],
    after: dict[str, Any],
    stored: Any,
    expected: Any,
) -> None:
    changes.add_field("account", before, actor=ADMIN)
    record = create(qiao_runtime, "account", name="甲", f=stored)
    changes.alter_field("account", "f", after, actor=ADMIN)
    value = column_values(qiao_runtime, "account", "f")[record]
    assert value == (decimal.Decimal(expected) if isinstance(value, decimal.Decimal) else expected)


@pytest.mark.parametrize(
    ("before", "after", "stored"),
    [
        (field("f", "text"), field("f", "string", max_length=3), "abcdef"),
        (field("f", "string"), field("f", "integer"), "12a"),
        (field("f", "decimal", scale=2), field("f", "decimal", scale=1), "1.25"),
        (field("f", "decimal", scale=2), field("f", "integer"), "1.50"),
        (
            field("f", "enum", values=[{"value": "A"}, {"value": "B"}]),
            field("f", "enum", values=[{"value": "A"}]),
            "B",
        ),
    ],
)
def test_lossy_changes_are_refused_unless_forced(
    qiao_runtime: Runtime,
    changes: MetadataChanges,
    before: dict[str, Any],
    after: dict[str, Any],
    stored: Any,
) -> None:
    changes.add_field("account", before, actor=ADMIN)
    record = create(qiao_runtime, "account", name="甲", f=stored)
    kept = create(qiao_runtime, "account", name="乙")
    original = column_values(qiao_runtime, "account", "f")
    with pytest.raises(Conflict, match=r"1 of 1 records.*pass force") as raised:
        changes.alter_field("account", "f", after, actor=ADMIN)
    assert raised.value.field == "f"
    assert column_values(qiao_runtime, "account", "f") == original
    assert version(qiao_runtime) == 1
    changes.alter_field("account", "f", after, actor=ADMIN, force=True)
    assert column_values(qiao_runtime, "account", "f") == {record: None, kept: None}
    assert version(qiao_runtime) == 2


def test_unique_is_refused_over_repeated_values(
    qiao_runtime: Runtime, changes: MetadataChanges
) -> None:
    changes.add_field("account", field("code", "string"), actor=ADMIN)
    create(qiao_runtime, "account", name="甲", code="X")
    create(qiao_runtime, "account", name="乙", code="X")
    with pytest.raises(Conflict, match="repeat"):
        changes.alter_field("account", "code", field("code", "string", unique=True), actor=ADMIN)
    changes.alter_field("account", "code", field("code", "string", indexed=True), actor=ADMIN)
    with qiao_runtime.db.read() as conn:
        indexes = {i["name"] for i in inspect(conn).get_indexes("account")}
    assert "ix_account_code" in indexes


def test_drop_field_with_data_needs_force(qiao_runtime: Runtime, changes: MetadataChanges) -> None:
    changes.add_field("account", field("voltage", "decimal", scale=1, indexed=True), actor=ADMIN)
    create(qiao_runtime, "account", name="甲", voltage="220.5")
    with pytest.raises(Conflict, match="1 account records have a value in voltage"):
        changes.drop_field("account", "voltage", actor=ADMIN)
    assert "voltage" in columns(qiao_runtime, "account")
    changes.drop_field("account", "voltage", actor=ADMIN, force=True)
    assert "voltage" not in columns(qiao_runtime, "account")
    assert qiao_runtime.current().entity("account").field("voltage") is None


@pytest.mark.parametrize(
    ("definition", "named", "message"),
    [
        (field("Voltage", "string"), "Voltage", "snake_case"),
        (field("voltage", "volts"), "voltage", "Input should be"),
        (field("name", "text"), "name", "exists already"),
        (field("site", "relation", target="nowhere"), "site", "unknown entity 'nowhere'"),
        (field("version", "integer"), "version", "reserved"),
        (field("qiao_secret", "string"), "qiao_secret", "reserved"),
        (field("voltage", "decimal", scale=5, precision=2), "voltage", "scale is greater"),
    ],
)
def test_invalid_definitions_write_nothing(
    qiao_runtime: Runtime,
    changes: MetadataChanges,
    definition: dict[str, Any],
    named: str,
    message: str,
) -> None:
    before = columns(qiao_runtime, "account")
    with pytest.raises(MetadataError, match=message) as raised:
        changes.add_field("account", definition, actor=ADMIN)
    assert raised.value.code == "BAD_USER_INPUT"
    assert raised.value.field == named
    assert columns(qiao_runtime, "account") == before
    assert version(qiao_runtime) == 0
    with qiao_runtime.db.read() as conn:
        assert store.history(conn) == []
        assert store.custom_field_names(conn) == set()


def test_picklist_values_differing_only_in_case_are_refused_at_run_time(
    qiao_runtime: Runtime, changes: MetadataChanges
) -> None:
    changes.add_field("account", field("tier", "enum", values=[{"value": "gold"}]), actor=ADMIN)
    clashing = field("tier", "enum", values=[{"value": "gold"}, {"value": "GOLD"}])
    with pytest.raises(MetadataError, match="'gold' and 'GOLD' differ only in case") as raised:
        changes.alter_field("account", "tier", clashing, actor=ADMIN)
    assert raised.value.code == "BAD_USER_INPUT"
    with pytest.raises(MetadataError, match="'gold' and 'GOLD' differ only in case"):
        changes.add_field("account", {**clashing, "name": "grade"}, actor=ADMIN)
    assert version(qiao_runtime) == 1
    assert "grade" not in columns(qiao_runtime, "account")
    tier = qiao_runtime.current().entity("account").field("tier")
    assert tier is not None and tier.enum_values == ("gold",)


def test_plugin_metadata_cannot_be_altered_or_dropped(
    qiao_runtime: Runtime, changes: MetadataChanges
) -> None:
    with pytest.raises(MetadataError, match="declared by a plugin"):
        changes.alter_field("account", "name", field("name", "text"), actor=ADMIN)
    with pytest.raises(MetadataError, match="declared by a plugin"):
        changes.drop_field("account", "industry", actor=ADMIN, force=True)
    with pytest.raises(MetadataError, match="only custom entities"):
        changes.drop_entity("account", actor=ADMIN, force=True)
    with pytest.raises(NotFound):
        changes.drop_field("account", "nothing", actor=ADMIN)
    assert version(qiao_runtime) == 0


def test_only_administrators_change_metadata(changes: MetadataChanges) -> None:
    clerk = Actor(user_id=None, username="clerk")
    with pytest.raises(Forbidden):
        changes.add_field("account", field("voltage", "string"), actor=clerk)


def test_custom_entity_lifecycle(qiao_runtime: Runtime, changes: MetadataChanges) -> None:
    changes.create_entity(
        {
            "name": "device",
            "plural": "devices",
            "label": {"en": "Device", "zh-CN": "设备"},
            "fields": [
                field("serial", "string", unique=True, required=True),
                field("account", "relation", target="account", inverse="devices"),
            ],
        },
        actor=ADMIN,
    )
    registry = qiao_runtime.current().registry
    assert registry.entity("device").source == "custom"
    assert registry.reverse("account", "devices") is not None
    account = create(qiao_runtime, "account", name="甲")
    create(qiao_runtime, "device", serial="SN-1", account=account)
    changes.add_field("device", field("voltage", "integer"), actor=ADMIN)
    changes.alter_field("device", "voltage", field("voltage", "decimal", scale=1), actor=ADMIN)
    changes.create_entity(
        {
            "name": "reading",
            "plural": "readings",
            "label": LABEL,
            "fields": [field("device", "relation", target="device")],
        },
        actor=ADMIN,
    )
    with pytest.raises(MetadataError, match=r"reading\.device points at device"):
        changes.drop_entity("device", actor=ADMIN, force=True)
    changes.drop_entity("reading", actor=ADMIN)
    with pytest.raises(Conflict, match="device has 1 records"):
        changes.drop_entity("device", actor=ADMIN)
    changes.drop_entity("device", actor=ADMIN, force=True)
    with qiao_runtime.db.read() as conn:
        assert "device" not in inspect(conn).get_table_names()
    assert column_values(qiao_runtime, "account", "name") == {account: "甲"}
    assert qiao_runtime.current().registry.reverse("account", "devices") is None


@pytest.mark.parametrize("name", ["viewer", "metadata", "entity", "account"])
def test_entity_names_that_would_break_the_api_are_refused(
    qiao_runtime: Runtime, changes: MetadataChanges, name: str
) -> None:
    with pytest.raises(MetadataError) as raised:
        changes.create_entity({"name": name, "plural": f"{name}_list", "label": LABEL}, actor=ADMIN)
    assert raised.value.field == "name"
    assert version(qiao_runtime) == 0


def test_another_runtime_sees_the_change(
    qiao_runtime: Runtime, changes: MetadataChanges, qiao_config: Any
) -> None:
    other = Runtime(qiao_config)
    try:
        assert other.current().entity("account").field("voltage") is None
        changes.add_field("account", field("voltage", "integer"), actor=ADMIN)
        assert other.current().entity("account").field("voltage") is not None
        assert other.current().version == 1
    finally:
        other.close()


def test_relation_field_on_a_plugin_entity(qiao_runtime: Runtime, changes: MetadataChanges) -> None:
    changes.add_field(
        "account",
        field("key_contact", "relation", target="contact", inverse="key_contact_of"),
        actor=ADMIN,
    )
    assert qiao_runtime.current().registry.reverse("contact", "key_contact_of") is not None
    contact = create(qiao_runtime, "contact", name="张三")
    account = create(qiao_runtime, "account", name="甲", key_contact=contact)
    assert column_values(qiao_runtime, "account", "key_contact_id") == {account: contact}
    with qiao_runtime.db.read() as conn:
        keys = inspect(conn).get_foreign_keys("account")
    assert any(k["constrained_columns"] == ["key_contact_id"] for k in keys)
    changes.drop_field("account", "key_contact", actor=ADMIN, force=True)
    assert "key_contact_id" not in columns(qiao_runtime, "account")
    assert column_values(qiao_runtime, "contact", "name") == {contact: "张三"}
