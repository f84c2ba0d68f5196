"""``qiao backup``: encrypted snapshots, restored only whole and only into an empty database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import create_engine, make_url, text

from qiao.core.encryption.backup import MAGIC, checksums
from qiao.core.records.context import Actor
from qiao.core.storage.database import Database, normalise_url

from . import test_keys
from .conftest import Run
from .test_keys import ALICE, runtime_of, write

deployment = test_keys.deployment  # the fixture: a deployment with encrypted patients


@pytest.fixture
def empty_url(qiao_database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind."""
    if qiao_database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    admin = create_engine(normalise_url(qiao_database_url), isolation_level="AUTOCOMMIT")
    name = f"qiao_restore_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(qiao_database_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def target_config(deployment: Path, url: str) -> Path:
    """A second qiao.toml in the same folder: same plugins and key file, another database."""
    import tomllib

    data = tomllib.loads(deployment.read_text(encoding="utf-8"))
    data["database"]["url"] = url
    path = deployment.with_name("target.toml")
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def sums(url: str) -> dict:
    db = Database(url)
    try:
        with db.read() as conn:
            return checksums(conn)
    finally:
        db.dispose()


def test_round_trip_restores_identical_rows(deployment: Path, empty_url: str, qiao: Run):
    file = deployment.parent / "qiao.backup"
    out = qiao("--config", str(deployment), "backup", "create", str(file)).output
    assert "backed up" in out and file.stat().st_mode & 0o777 == 0o600
    raw = file.read_bytes()
    assert raw.startswith(MAGIC) and "高血压".encode() not in raw and b"patient" not in raw[200:]
    target = target_config(deployment, empty_url)
    out = qiao("--config", str(target), "backup", "restore", str(file)).output
    assert "restored" in out
    source_url = tomllib_url(deployment)
    assert sums(empty_url) == sums(source_url)
    with runtime_of(target) as runtime:
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn, "patient", filter={"phone": {"eq": "13800138000"}}, actor=Actor.system()
            )
        assert {r["diagnosis"] for r in page.records} == {"高血压"} and len(page.records) == 3
        write(runtime, {**ALICE, "name": "恢复后"})  # the restored deployment keeps working


def tomllib_url(config: Path) -> str:
    import tomllib

    return tomllib.loads(config.read_text(encoding="utf-8"))["database"]["url"]


def test_restore_refuses_a_database_that_is_not_empty(deployment: Path, qiao: Run):
    file = deployment.parent / "qiao.backup"
    qiao("--config", str(deployment), "backup", "create", str(file))
    refused = qiao("--config", str(deployment), "backup", "restore", str(file), expect=1)
    assert "restore needs an empty database" in refused.output


@pytest.mark.parametrize("damage", ["truncate", "reorder", "alter", "header", "append"])
def test_damaged_backups_are_refused_before_anything_is_written(
    deployment: Path, empty_url: str, qiao: Run, damage: str
):
    file = deployment.parent / "qiao.backup"
    qiao("--config", str(deployment), "backup", "create", str(file))
    raw = bytearray(file.read_bytes())
    header_end = len(MAGIC) + 4 + int.from_bytes(raw[len(MAGIC) : len(MAGIC) + 4], "big")
    chunk = 64 * 1024 + 16
    body_start = header_end + 5 + 1 + 1 + raw[header_end + 6] + 4 + 16
    if damage == "truncate":
        raw = raw[: len(raw) - 10]
    elif damage == "reorder":
        if len(raw) - body_start < 2 * chunk:
            raw = raw[:body_start] + raw[body_start + 16 :] + raw[body_start : body_start + 16]
        else:
            first, second = body_start, body_start + chunk
            raw[first:second], raw[second : second + chunk] = (
                raw[second : second + chunk],
                raw[first:second],
            )
    elif damage == "alter":
        raw[body_start + 40] ^= 0x01
    elif damage == "header":
        raw[header_end - 3] ^= 0x01
    else:
        raw += b"\x00" * 32
    file.write_bytes(bytes(raw))
    target = target_config(deployment, empty_url)
    refused = qiao("--config", str(target), "backup", "restore", str(file), expect=1)
    assert "refused" in refused.output or "damaged" in refused.output, refused.output
    db = Database(empty_url)
    try:
        from sqlalchemy import inspect

        with db.read() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        db.dispose()
