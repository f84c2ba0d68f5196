"""``qiao backup``: encrypted snapshots, restored only whole and only into an empty database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from qiao.core.encryption.backup import MAGIC, checksums
from qiao.core.records.context import Actor, Source
from qiao.core.storage.database import Database
from qiao.core.testing.deployment import Deployment

from . import test_keys
from .conftest import Run
from .test_keys import ALICE, runtime_of, write

deployment = test_keys.deployment  # the fixture: a deployment with encrypted patients
SYSTEM = Actor.system()


@pytest.fixture
def empty_url(qiao_empty_database_url: str) -> str:
    """A second, empty database of the same kind, to restore into."""
    return qiao_empty_database_url


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


RUN_TIME_FIELDS = {
    "contact": [
        # a searchable encrypted field added at run time puts its _bidx column beside it
        "{name: id_number, type: string, max_length: 18, encrypted: true, searchable: exact}",
        "{name: remark, type: string, max_length: 100}",  # ... and this column after it
        "{name: secret_note, type: text, encrypted: true}",
        "{name: headline, type: string, formula: 'name & \" / \" & title'}",
    ],
    "account": [
        "{name: contact_count, type: integer, rollup: {function: count, entity: contact, "
        "link: account}}",
    ],
    # accounts have owners, who are users: users and accounts now refer to each other
    "user": ["{name: dealer, type: relation, target: account, inverse: portal_users}"],
}


@pytest.fixture
def second_empty_url(request: pytest.FixtureRequest, qiao_backend: str) -> Iterator[str]:
    """Another new, empty database on the test's backend (``qiao_deployment`` has the
    first), to restore into; dropped in the background after the test."""
    databases = request.getfixturevalue(f"_qiao_{qiao_backend}")
    url: str = databases.empty()
    yield url
    databases.release(url)


def test_a_backup_with_run_time_fields_of_every_kind_restores_into_an_empty_database(
    qiao_deployment: Deployment, second_empty_url: str, tmp_path: Path
) -> None:
    """Fields added by ``qiao field add`` order their columns otherwise than a new table does;
    the backup is checked by column name, so the restore verifies and counts every row.

    A relation from users to accounts, whose owners are users, leaves the two tables
    no order in which every row's references are in before it: the restore fills
    those references in after the rows (PostgreSQL checks each row as it goes in)."""
    site = qiao_deployment
    for entity, fields in RUN_TIME_FIELDS.items():
        for i, definition in enumerate(fields):
            file = tmp_path / f"{entity}-{i}.yaml"
            labelled = definition.replace("{name: ", "{label: {en: Field}, name: ", 1)
            file.write_text(f"{labelled}\n", encoding="utf-8")
            site.run("field", "add", entity, str(file))
    with (
        runtime_of(site.config) as runtime,
        runtime.records.transaction(SYSTEM, Source.CLI) as ctx,
    ):
        account = runtime.records.create(ctx, "account", {"name": "精工机床"})
        dealer = runtime.records.create(
            ctx,
            "user",
            {"username": "jinggong", "display_name": "精工门户", "dealer": account["id"]},
        )
        runtime.records.update(ctx, "account", account["id"], {"owner": dealer["id"]})
        for i in range(3):
            runtime.records.create(
                ctx,
                "contact",
                {
                    "name": f"联系人{i}",
                    "title": "采购",
                    "account": account["id"],
                    "id_number": f"11010519491231002{i}",
                    "remark": "展会",
                    "secret_note": "只谈价格",
                },
            )
    backup = tmp_path / "site.backup"
    site.run("backup", "create", str(backup))
    target = target_config(site.config, second_empty_url)
    out = site.run("--config", str(target), "backup", "restore", str(backup)).stdout
    source = sums(tomllib_url(site.config))
    assert sums(second_empty_url) == source
    rows = sum(count for count, _ in source.values())
    assert out.startswith(f"restored {rows} rows of {len(source)} tables from ")
    with runtime_of(target) as runtime, runtime.db.read() as conn:
        found = runtime.records.list(
            conn, "contact", filter={"id_number": {"eq": "110105194912310021"}}, actor=SYSTEM
        ).records
        restored = runtime.records.get(conn, "account", account["id"], actor=SYSTEM)
    assert [(c["name"], c["secret_note"], c["headline"]) for c in found] == [
        ("联系人1", "只谈价格", "联系人1 / 采购")
    ]
    assert restored["contact_count"] == 3
    assert restored["owner_id"] == dealer["id"]
    with runtime_of(target) as runtime, runtime.db.read() as conn:
        assert (
            runtime.records.get(conn, "user", dealer["id"], actor=SYSTEM)["dealer_id"]
            == (account["id"])
        )


def test_a_backup_of_an_unknown_format_is_refused_by_its_version(
    deployment: Path, empty_url: str, qiao: Run
) -> None:
    file = deployment.parent / "qiao.backup"
    qiao("--config", str(deployment), "backup", "create", str(file))
    raw = file.read_bytes()
    assert b'"format":2' in raw[:200]
    file.write_bytes(raw.replace(b'"format":2', b'"format":9', 1))
    target = target_config(deployment, empty_url)
    refused = qiao("--config", str(target), "backup", "restore", str(file), expect=1)
    assert "backup format 9 is unknown to this version of Qiao, which reads formats 1, 2" in (
        refused.output
    )
