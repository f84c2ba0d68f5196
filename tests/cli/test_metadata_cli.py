"""``qiao entity``, ``qiao field`` and ``qiao metadata`` against a real database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from sqlalchemy import inspect

from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

Run = Callable[..., Result]

DEVICE = """\
name: device
plural: devices
label: {en: Device, zh-CN: 设备}
fields:
  - {name: serial, type: string, max_length: 64, unique: true, label: {en: Serial, zh-CN: 序列号}}
  - {name: account, type: relation, target: account, inverse: devices, label: {en: Account}}
"""


def test_entity_and_field_commands(run: Run, tmp_path: Path, qiao_runtime: Runtime) -> None:
    manifest = tmp_path / "device.yaml"
    manifest.write_text(DEVICE, encoding="utf-8")
    created = run("entity", "create", str(manifest), "--note", "devices on site")
    assert "created entity device (metadata version 1)" in created.output
    listed = run("entity", "list").output.splitlines()
    assert any(line.split()[:3] == ["device", "devices", "custom"] for line in listed)

    run(
        "field", "add", "account", "--name", "voltage", "--type", "decimal", "--scale", "1",
        "--label-zh", "电压", "--label-en", "Voltage",
    )  # fmt: skip
    voltage = qiao_runtime.current().entity("account").field("voltage")
    assert voltage is not None
    assert (voltage.label.zh_cn, voltage.scale) == ("电压", 1)
    run("field", "alter", "account", "voltage", "--scale", "2")
    altered = qiao_runtime.current().entity("account").field("voltage")
    assert altered is not None
    assert (altered.label.zh_cn, altered.scale) == ("电压", 2)

    field_file = tmp_path / "code.json"
    field_file.write_text('{"name": "code", "type": "string", "label": {"en": "Code"}}')
    run("field", "add", "device", str(field_file))
    run("field", "drop", "device", "code")
    run("field", "drop", "account", "voltage")
    run("entity", "drop", "device")
    with qiao_runtime.db.read() as conn:
        assert "device" not in inspect(conn).get_table_names()

    history = run("metadata", "history").output.splitlines()
    assert [line.split()[3:5] for line in history] == [
        ["drop_entity", "device"],
        ["drop_field", "account.voltage"],
        ["drop_field", "device.code"],
        ["add_field", "device.code"],
        ["alter_field", "account.voltage"],
        ["add_field", "account.voltage"],
        ["create_entity", "device"],
    ]
    assert history[-1].endswith("devices on site")


def test_failures_print_one_line(run: Run) -> None:
    refused = run("field", "alter", "account", "name", "--type", "text", expect=1)
    assert refused.output.strip().splitlines() == [
        "Error: account.name is declared by a plugin; only fields added by administrators "
        "can be altered or dropped"
    ]
    bad = run("field", "add", "account", "--name", "Bad", "--type", "string", expect=1)
    assert "snake_case" in bad.output
    assert "Traceback" not in bad.output
    missing = run("field", "add", "account", expect=1)
    assert "give a FILE, or --name and --type" in missing.output


def test_drop_with_data_needs_force(run: Run, qiao_runtime: Runtime) -> None:
    run("field", "add", "account", "--name", "floor", "--type", "integer")
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "account", {"name": "甲", "floor": 3})
    assert "pass force" in run("field", "drop", "account", "floor", expect=1).output
    run("field", "drop", "account", "floor", "--force")


def test_alter_type_leaves_the_old_type_options_behind(run: Run, qiao_runtime: Runtime) -> None:
    run("field", "add", "account", "--name", "floor", "--type", "string", "--max-length", "8")
    run("field", "alter", "account", "floor", "--type", "integer")
    floor = qiao_runtime.current().entity("account").field("floor")
    assert floor is not None
    assert (floor.type.value, floor.max_length) == ("integer", None)
