"""``qiao audit``: verify, checkpoint (and export), prune, create-key, on a real deployment."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import text

from qiao.cli.identity import create_user
from qiao.core.config import Config
from qiao.core.crypto import generate_key_file
from qiao.core.runtime import Runtime
from qiao.core.storage.database import Database

from .conftest import write_config


def create_users(config: Path, *names: str, days_ago: int = 0) -> None:
    """Users created (at a chosen time) by a process that holds the audit key."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    runtime = Runtime(Config.load(config, env={}), clock=lambda: at)
    try:
        runtime.start()
        for name in names:
            create_user(runtime, name, name, None, "member")
    finally:
        runtime.close()


@pytest.fixture
def qiao_audited_setup() -> bool:
    """These commands are shown on a log that starts empty, keyed by 'qiao audit init-key'."""
    return False


@pytest.fixture
def audited(tmp_path: Path, qiao_database_url: str, make_config, qiao) -> Path:
    """A deployment with an audit key file and two audited users; returns its qiao.toml."""
    config = make_config(tmp_path / "qiao.toml", qiao_database_url)
    qiao("--config", str(config), "audit", "init-key")
    for name in ("wang.fang", "li.na"):
        qiao("--config", str(config), "user", "create", name)
    return config


def test_verify_reports_the_entries_it_checked(audited, qiao):
    result = qiao("--config", str(audited), "audit", "verify")
    assert result.output == "audit log verified: entries 1 to 2 (2 entries)\n"


def test_verify_names_the_first_bad_entry_and_exits_1(audited, qiao, qiao_database_url):
    database = Database(qiao_database_url)
    with database.write() as conn:
        conn.execute(text("UPDATE qiao_audit_entry SET actor = 'nobody' WHERE sequence = 1"))
    database.dispose()
    result = qiao("--config", str(audited), "audit", "verify", expect=1)
    assert "audit log does NOT verify: entry 1 does not verify" in result.output


def test_an_exported_checkpoint_anchors_verification(audited, qiao, tmp_path):
    exported = tmp_path / "checkpoint.json"
    result = qiao("--config", str(audited), "audit", "checkpoint", "--export", str(exported))
    assert result.output.startswith("checkpoint at entry 2 (")
    document = json.loads(exported.read_text())
    assert (document["format"], document["sequence"], document["key_id"]) == (
        "qiao-audit-checkpoint/1",
        2,
        "audit-1",
    )
    qiao("--config", str(audited), "user", "create", "zhao.lei")
    result = qiao("--config", str(audited), "audit", "verify", "--from-checkpoint", str(exported))
    assert result.output == "audit log verified: entries 3 to 3 (1 entries)\n"

    document["sequence"] = 9
    exported.write_text(json.dumps(document))
    result = qiao(
        "--config", str(audited), "audit", "verify", "--from-checkpoint", str(exported), expect=1
    )
    assert "entry 9 is named by the exported checkpoint, which the audit key did not sign" in (
        result.output
    )


def test_a_checkpoint_exports_to_stdout(audited, qiao):
    result = qiao("--config", str(audited), "audit", "checkpoint", "--export", "-")
    assert json.loads(result.output)["sequence"] == 2


def test_a_damaged_checkpoint_file_is_refused(audited, qiao, tmp_path):
    damaged = tmp_path / "checkpoint.json"
    damaged.write_text('{"format": "something else"}')
    result = qiao(
        "--config", str(audited), "audit", "verify", "--from-checkpoint", str(damaged), expect=1
    )
    assert "not an exported audit checkpoint" in result.output


def test_prune_keeps_what_is_younger_than_the_retention(audited, qiao):
    result = qiao("--config", str(audited), "audit", "prune")
    assert result.output == "nothing to prune: no entry is older than 180 days\n"


def test_prune_removes_old_entries_and_verification_goes_on(tmp_path, qiao_database_url, qiao):
    config = tmp_path / "qiao.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "database": {"url": qiao_database_url},
                "audit": {"key_file": "audit.key", "retention_days": 365},
            }
        )
    )
    generate_key_file(tmp_path / "audit.key")
    qiao("--config", str(config), "audit", "init-key")
    create_users(config, "wang.fang", "li.na", days_ago=400)
    create_users(config, "zhao.lei")
    result = qiao("--config", str(config), "audit", "prune")
    assert result.output == (
        "pruned entries 1 to 2 (older than 365 days); "
        "verification now starts from the checkpoint at entry 2\n"
    )
    result = qiao("--config", str(config), "audit", "verify")
    assert result.output == "audit log verified: entries 3 to 4 (2 entries)\n"


def test_commands_need_an_audit_key(tmp_path, qiao_database_url, qiao):
    config = write_config(tmp_path / "qiao.toml", qiao_database_url)
    result = qiao("--config", str(config), "audit", "verify", expect=1)
    assert "no audit key is configured" in result.output


def test_create_key_makes_a_private_key_file_and_never_overwrites(qiao, tmp_path):
    path = tmp_path / "audit.key"
    qiao("audit", "create-key", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    result = qiao("audit", "create-key", str(path), expect=1)
    assert "exists already" in result.output
    assert path.read_bytes() == before


def erase_the_log(url: str) -> None:
    """What someone with write access to the database alone can do to the log."""
    database = Database(url)
    with database.write() as conn:
        for table in ("qiao_audit_entry", "qiao_audit_checkpoint", "qiao_audit_key"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(
            text("UPDATE qiao_audit_head SET sequence = 0, mac = :mac, key_id = NULL"),
            {"mac": "00" * 32},
        )
    database.dispose()


def test_an_erased_log_stops_writes_and_fails_verify_and_doctor(audited, qiao, qiao_database_url):
    checkpoints = audited.parent / "audit-checkpoints.jsonl"
    assert stat.S_IMODE(checkpoints.stat().st_mode) == 0o600
    assert json.loads(checkpoints.read_text().splitlines()[0])["sequence"] == 1
    erase_the_log(qiao_database_url)

    result = qiao("--config", str(audited), "user", "create", "zhao.lei", expect=1)
    assert "the audit log has no key" in result.output  # no key is minted by the write
    result = qiao("--config", str(audited), "audit", "verify", expect=1)
    assert "named by the checkpoint file, whose audit key is unknown" in result.output
    result = qiao("--config", str(audited), "doctor", expect=1)
    assert "the audit log has no key" in result.output
    result = qiao("--config", str(audited), "audit", "init-key", expect=1)
    assert "the audit log or its key was erased" in result.output


def test_a_cut_tail_and_a_rewound_head_fail_verify(audited, qiao, qiao_database_url):
    qiao("--config", str(audited), "audit", "checkpoint")  # as the periodic checkpoint does
    database = Database(qiao_database_url)
    with database.write() as conn:
        mac = conn.execute(text("SELECT mac FROM qiao_audit_entry WHERE sequence = 1")).scalar()
        conn.execute(text("DELETE FROM qiao_audit_entry WHERE sequence > 1"))
        conn.execute(text("DELETE FROM qiao_audit_checkpoint WHERE sequence > 1"))
        conn.execute(text("UPDATE qiao_audit_head SET sequence = 1, mac = :mac"), {"mac": mac})
    database.dispose()
    result = qiao("--config", str(audited), "audit", "verify", expect=1)
    assert "the checkpoint file vouches for entries up to 2" in result.output
    result = qiao("--config", str(audited), "audit", "verify", "--ignore-checkpoint-file")
    assert result.output == "audit log verified: entries 1 to 1 (1 entries)\n"
