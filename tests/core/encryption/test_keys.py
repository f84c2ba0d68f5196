"""Data keys: start-up checks, wrapping, usage limits and transactions that roll back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qiao.core.config import Config
from qiao.core.crypto import generate_key_file, sealed_key_id
from qiao.core.errors import ConfigurationError
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system

from .conftest import ALICE, PATIENTS, deployment


def key_rows(runtime: Runtime) -> list[dict]:
    with runtime.db.read() as conn:
        rows = conn.execute(select(system.data_key).order_by(system.data_key.c.key_id)).all()
    return [dict(r._mapping) for r in rows]


def test_keys_are_stored_wrapped_one_data_key_and_one_index_key_per_entity(
    qiao_runtime: Runtime, write: Callable, key_file: Path
):
    write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    rows = key_rows(qiao_runtime)
    assert [(r["key_id"], r["purpose"], r["state"]) for r in rows] == [
        ("bik-patient", "index", "active"),
        ("dek-patient-1", "data", "active"),
    ]
    assert all(r["kek_id"] == "file:v1" for r in rows)
    kek = bytes.fromhex(json.loads(key_file.read_text())["kek"]["1"])
    secret = qiao_runtime.records.encryption.keys.lookup("dek-patient-1").secret
    for row in rows:
        assert secret not in bytes(row["wrapped"]) and kek not in bytes(row["wrapped"])
    assert rows[1]["sealed"] >= 5  # a lease of seals was reserved


def test_start_up_without_a_key_provider_stops_with_a_clear_message(
    qiao_config: Config,
):
    config = dataclasses.replace(qiao_config, path=None)
    runtime = Runtime(config, extra_plugins=[PATIENTS])
    try:
        runtime.current()
        with pytest.raises(ConfigurationError, match=r"need a key provider.*\[keys\]"):
            runtime.start()
    finally:
        runtime.close()


def test_start_up_with_the_wrong_kek_stops_and_writes_nothing(
    qiao_runtime: Runtime, write: Callable, qiao_config: Config, tmp_path: Path
):
    write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    before = key_rows(qiao_runtime)
    other = tmp_path / "other"
    other.mkdir()
    generate_key_file(other / "qiao-kek.json")
    runtime = Runtime(deployment(other, qiao_config), extra_plugins=[PATIENTS])
    try:
        runtime.current()
        with pytest.raises(ConfigurationError, match="cannot unwrap dek-patient-1"):
            runtime.start()
    finally:
        runtime.close()
    assert key_rows(qiao_runtime) == before


def test_a_missing_key_file_stops_start_up(qiao_runtime: Runtime, write: Callable, key_file):
    write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    key_file.unlink()
    runtime = Runtime(qiao_runtime.config, extra_plugins=[PATIENTS])
    try:
        runtime.current()
        with pytest.raises(ConfigurationError, match="does not exist"):
            runtime.start()
    finally:
        runtime.close()


def test_a_data_key_at_its_limit_is_replaced_and_stays_readable(
    qiao_runtime: Runtime, write: Callable
):
    keys = qiao_runtime.records.encryption.keys
    keys.limit = 300  # two leases of 256 do not fit
    first = [write(lambda r, ctx: r.create(ctx, "patient", ALICE)) for _ in range(60)]
    rows = {r["key_id"]: r for r in key_rows(qiao_runtime)}
    assert rows["dek-patient-1"]["state"] == "previous"
    assert rows["dek-patient-1"]["sealed"] <= 300
    assert rows["dek-patient-2"]["state"] == "active"
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.read() as conn:
        used = {sealed_key_id(t) for (t,) in conn.execute(select(table.c.notes))}
        assert used == {"dek-patient-1", "dek-patient-2"}
        page = qiao_runtime.records.list(conn, "patient", first=100, actor=Actor.system())
    assert {r["diagnosis"] for r in page.records} == {"高血压"} and len(first) == 60


def test_a_rolled_back_write_leaves_no_key_and_no_lease_behind(qiao_runtime: Runtime):
    records = qiao_runtime.records
    keys = records.encryption.keys
    with pytest.raises(RuntimeError), records.transaction(Actor.system(), Source.CLI) as ctx:
        records.create(ctx, "patient", ALICE)
        raise RuntimeError("abandon")
    assert key_rows(qiao_runtime) == []
    assert keys._budget == {} and "dek-patient-1" not in keys._keys
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        created = records.create(ctx, "patient", ALICE)
    with qiao_runtime.db.read() as conn:
        assert (
            records.get(conn, "patient", created["id"], actor=Actor.system())["notes"]
            == ALICE["notes"]
        )
        assert conn.execute(select(func.count()).select_from(system.data_key)).scalar() == 2


def test_the_audit_log_redacts_encrypted_fields(qiao_config: Config):
    runtime = Runtime(qiao_config, extra_plugins=[PATIENTS])
    try:
        runtime.current()
        runtime.start()
        with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
            runtime.records.create(ctx, "patient", ALICE)
        with runtime.db.read() as conn:
            entries = [json.loads(c) for (c,) in conn.execute(select(system.audit_entry.c.changes))]
    finally:
        runtime.close()
    patient = [e for e in entries if "diagnosis" in json.dumps(e)]
    assert patient, entries
    text = json.dumps(patient, ensure_ascii=False)
    assert "张三" in text and "高血压" not in text and "13800138000" not in text
