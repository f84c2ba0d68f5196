"""``qiao keys``: status, KEK rotation, online data- and index-key rotation (resumable), retire."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from qiao.core.config import Config
from qiao.core.crypto import sealed_key_id
from qiao.core.encryption.fields import index_version
from qiao.core.encryption.rotation import (
    key_usage,
    retire,
    rotate_data,
    rotate_index,
    rotate_kek,
)
from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

from .conftest import Run

PATIENT = Path(__file__).parents[1] / "core" / "encryption" / "patient.yaml"
ALICE = {"name": "张三", "phone": "13800138000", "diagnosis": "高血压", "notes": "复查"}


@pytest.fixture
def deployment(config_file: Path, qiao: Run) -> Path:
    """A deployment with a key file and a custom ``patient`` entity holding 3 records."""
    qiao("--config", str(config_file), "entity", "create", str(PATIENT))
    with runtime_of(config_file) as runtime:
        for i in range(3):
            write(runtime, {**ALICE, "name": f"患者{i}"})
    return config_file


class runtime_of:
    def __init__(self, path: Path) -> None:
        self.runtime = Runtime(Config.load(path))

    def __enter__(self) -> Runtime:
        self.runtime.current()
        self.runtime.start()
        return self.runtime

    def __exit__(self, *_: object) -> None:
        self.runtime.close()


def write(runtime: Runtime, values: dict) -> dict:
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        return runtime.records.create(ctx, "patient", values)


def tokens(runtime: Runtime) -> Iterator[str]:
    table = runtime.current().table("patient")
    with runtime.db.read() as conn:
        for (token,) in conn.execute(select(table.c.diagnosis)):
            yield token


def test_status_lists_keys_and_what_they_seal(deployment: Path, qiao: Run):
    out = qiao("--config", str(deployment), "keys", "status").output
    assert "key-encryption key: file:v1" in out
    assert "dek-patient-1" in out and "9 values" in out  # 3 records x 3 encrypted values set
    assert "bik-patient" in out


def test_rotate_rewraps_every_key_under_a_new_kek_version(deployment: Path, qiao: Run):
    out = qiao("--config", str(deployment), "keys", "rotate").output
    assert "new key-encryption key file:v2; re-wrapped 2 keys" in out
    document = json.loads((deployment.parent / "qiao-kek.json").read_text())
    assert document["current"] == 2 and set(document["kek"]) == {"1", "2"}
    assert "wrapped by file:v2" in qiao("--config", str(deployment), "keys", "status").output
    with runtime_of(deployment) as runtime, runtime.db.read() as conn:
        page = runtime.records.list(conn, "patient", actor=Actor.system())
    assert {r["diagnosis"] for r in page.records} == {"高血压"}


def test_rotate_data_reseals_rows_and_retire_then_succeeds(deployment: Path, qiao: Run):
    early = qiao("--config", str(deployment), "keys", "retire", "dek-patient-1", expect=1)
    assert "run 'qiao keys rotate --data' first" in early.output
    out = qiao(
        "--config", str(deployment), "keys", "rotate", "--data", "--batch", "2", "--settle", "0"
    ).output
    assert "patient: 3 rows re-sealed under dek-patient-2" in out
    with runtime_of(deployment) as runtime:
        assert {sealed_key_id(t) for t in tokens(runtime)} == {"dek-patient-2"}
        with runtime.db.read() as conn:
            found = runtime.records.list(
                conn, "patient", filter={"phone": {"eq": "13800138000"}}, actor=Actor.system()
            )
        assert len(found.records) == 3  # blind indexes did not change
    qiao("--config", str(deployment), "keys", "retire", "dek-patient-1")
    gone = qiao("--config", str(deployment), "keys", "retire", "dek-patient-1", expect=1)
    assert "there is no key" in gone.output


def test_rotate_data_after_retire_numbers_the_new_key_after_the_retired_one(
    deployment: Path, qiao: Run
):
    rotate = ("--config", str(deployment), "keys", "rotate", "--data", "--settle", "0")
    qiao(*rotate)
    qiao("--config", str(deployment), "keys", "retire", "dek-patient-1")
    out = qiao(*rotate).output
    assert "patient: 3 rows re-sealed under dek-patient-3" in out
    qiao("--config", str(deployment), "keys", "retire", "dek-patient-2")
    with runtime_of(deployment) as runtime:
        assert {sealed_key_id(t) for t in tokens(runtime)} == {"dek-patient-3"}


def test_a_process_unwraps_keys_wrapped_under_a_kek_version_made_after_it_started(
    deployment: Path,
):
    with runtime_of(deployment) as running, runtime_of(deployment) as admin:
        assert running.records.encryption.keys.provider.kek_id == "file:v1"
        rotate_kek(admin.records.encryption, deployment.parent / "qiao-kek.json")
        with admin.db.write() as conn:
            admin.records.encryption.keys.rotate_data_key(conn, "patient")
        # dek-patient-2 is wrapped under file:v2, which the running process's provider lacks
        key = running.records.encryption.keys.lookup("dek-patient-2")
        assert key.key_id == "dek-patient-2"
        assert running.records.encryption.keys.provider.kek_id == "file:v2"
        record = write(running, {**ALICE, "name": "轮换后"})
        with admin.db.read() as conn:
            read = admin.records.get(conn, "patient", record["id"], actor=Actor.system())
        assert read["diagnosis"] == "高血压"


def test_retire_refuses_a_key_that_still_seals_values(deployment: Path, qiao: Run):
    with runtime_of(deployment) as runtime, runtime.db.write() as conn:
        runtime.records.encryption.keys.rotate_data_key(conn, "patient")
    refused = qiao("--config", str(deployment), "keys", "retire", "dek-patient-1", expect=1)
    assert "still seals 9 stored values" in refused.output


def test_rotate_data_resumes_after_a_crash_without_another_key(deployment: Path):
    with runtime_of(deployment) as runtime:
        encryption = runtime.records.encryption
        calls = []

        def crash(entity: str, done: int, total: int) -> None:
            calls.append(done)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            rotate_data(encryption, runtime.current(), batch=2, progress=crash, settle=0)
        usage = key_usage(encryption, runtime.current(), indexes=False)
        assert usage == {"dek-patient-2": 6, "dek-patient-1": 3}  # first batch of 2 rows done
        done = rotate_data(encryption, runtime.current(), batch=2, settle=0)
        assert [(d.key_id, d.rows) for d in done] == [("dek-patient-2", 1)]
        assert key_usage(encryption, runtime.current(), indexes=False) == {"dek-patient-2": 9}


def test_rotation_under_concurrent_writes_loses_nothing(deployment: Path):
    with runtime_of(deployment) as runtime, runtime_of(deployment) as writer:
        written: list[dict] = []
        errors: list[BaseException] = []

        def keep_writing() -> None:
            try:
                for i in range(12):
                    record = write(writer, {**ALICE, "name": f"并发{i}"})
                    with writer.records.transaction(Actor.system(), Source.CLI) as ctx:
                        writer.records.update(ctx, "patient", record["id"], {"notes": f"改{i}"})
                    written.append(record)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            rotate_data(runtime.records.encryption, runtime.current(), batch=1, settle=0)
        finally:
            thread.join()
        assert not errors, errors
        rotate_data(runtime.records.encryption, runtime.current(), batch=5, settle=0)  # stragglers
        with runtime.db.read() as conn:
            page = runtime.records.list(conn, "patient", first=500, actor=Actor.system())
        by_name = {r["name"]: r for r in page.records}
        for i, record in enumerate(written):
            assert by_name[record["name"]]["notes"] == f"改{i}"
            assert by_name[record["name"]]["diagnosis"] == "高血压"
        assert set(key_usage(runtime.records.encryption, runtime.current(), indexes=False)) == {
            runtime.records.encryption.keys.active_key_id("patient")
        }


def test_a_tampered_key_row_stops_start_up(deployment: Path, qiao: Run):
    from qiao.core.storage import system

    with runtime_of(deployment) as runtime, runtime.db.write() as conn:
        wrapped = conn.execute(
            select(system.data_key.c.wrapped).where(system.data_key.c.key_id == "bik-patient")
        ).scalar_one()
        conn.execute(
            update(system.data_key)
            .where(system.data_key.c.key_id == "dek-patient-1")
            .values(wrapped=wrapped)
        )
    out = qiao("--config", str(deployment), "keys", "status", expect=1).output
    assert "cannot unwrap dek-patient-1" in out


def lookup(runtime: Runtime, phone: str) -> set[str]:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, "patient", filter={"phone": {"eq": phone}}, first=500, actor=Actor.system()
        )
    return {r["name"] for r in page.records}


def index_versions(runtime: Runtime) -> set[str]:
    table = runtime.current().table("patient")
    with runtime.db.read() as conn:
        return {index_version(i) for (i,) in conn.execute(select(table.c.phone_bidx))}


def test_rotate_index_recomputes_blind_indexes_and_retire_then_succeeds(
    deployment: Path, qiao: Run
):
    early = qiao("--config", str(deployment), "keys", "retire", "bik-patient", expect=1)
    assert "run 'qiao keys rotate --index' first" in early.output
    args = ("--config", str(deployment), "keys", "rotate", "--index", "--settle", "0")
    out = qiao(*args, "--batch", "2").output
    assert "patient: 3 rows re-indexed under bik-patient-2" in out
    status = qiao("--config", str(deployment), "keys", "status").output
    assert "bik-patient-2" in status and "3 indexes" in status  # one phone per patient
    with runtime_of(deployment) as runtime:
        assert index_versions(runtime) == {2}
        assert lookup(runtime, "138 0013 8000") == {"患者0", "患者1", "患者2"}
    qiao("--config", str(deployment), "keys", "retire", "bik-patient")
    with runtime_of(deployment) as runtime:
        assert lookup(runtime, "+8613800138000") == {"患者0", "患者1", "患者2"}
        write(runtime, {**ALICE, "name": "新患者"})
        assert "新患者" in lookup(runtime, "13800138000")


def test_lookups_find_rows_under_either_index_key_while_rotation_runs(deployment: Path):
    with runtime_of(deployment) as runtime:
        with runtime.db.write() as conn:
            runtime.records.encryption.keys.rotate_index_key(conn, "patient")
        write(runtime, {**ALICE, "name": "轮换中"})
        assert index_versions(runtime) == {1, 2}
        assert lookup(runtime, "13800138000") == {"患者0", "患者1", "患者2", "轮换中"}
        refused = runtime.records.encryption
        with pytest.raises(BadUserInput, match="still indexes 3 stored values"):
            retire(refused, runtime.current(), "bik-patient")


def test_rotate_index_resumes_after_a_crash_without_another_key(deployment: Path):
    with runtime_of(deployment) as runtime:
        encryption = runtime.records.encryption

        def crash(entity: str, done: int, total: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            rotate_index(encryption, runtime.current(), batch=2, progress=crash, settle=0)
        assert index_versions(runtime) == {1, 2}
        done = rotate_index(encryption, runtime.current(), batch=2, settle=0)
        assert [(d.entity, d.key_id, d.rows) for d in done] == [("patient", "bik-patient-2", 1)]
        assert index_versions(runtime) == {2}


def test_index_rotation_under_concurrent_writes_keeps_every_row_findable(deployment: Path):
    with runtime_of(deployment) as runtime, runtime_of(deployment) as writer:
        errors: list[BaseException] = []
        names: list[str] = []

        def keep_writing() -> None:
            try:
                for i in range(12):
                    record = write(writer, {**ALICE, "name": f"并发{i}"})
                    with writer.records.transaction(Actor.system(), Source.CLI) as ctx:
                        writer.records.update(
                            ctx, "patient", record["id"], {"phone": "13900139000"}
                        )
                    names.append(record["name"])
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            rotate_index(runtime.records.encryption, runtime.current(), batch=1, settle=0.5)
        finally:
            thread.join()
        assert not errors, errors
        rotate_index(runtime.records.encryption, runtime.current(), batch=5, settle=0)
        assert index_versions(runtime) == {2}
        assert lookup(runtime, "13900139000") == set(names)
        assert lookup(runtime, "13800138000") == {"患者0", "患者1", "患者2"}
