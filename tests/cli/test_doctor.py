"""qiao doctor: each check, what it reports, and the exit code."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w
from click.testing import Result
from sqlalchemy import text

from qiao.core.crypto import generate_key_file
from qiao.core.storage.database import Database

from .conftest import write_config

Run = Callable[..., Result]


def _line(output: str, check: str) -> str:
    (line,) = [line for line in output.splitlines() if line[6:].startswith(check)]
    return line


def test_a_new_deployment_is_healthy(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor")
    checks = ("config", "plugins", "database", "migrations", "key file", "audit key", "audit log")
    for check in (*checks, "templates"):
        assert _line(result.stdout, check).startswith("ok ")
    assert "(mode 0600, current KEK file:v1)" in _line(result.stdout, "key file")
    assert _line(result.stdout, "key provider").endswith("file: file:v1 wraps and unwraps")
    assert _line(result.stdout, "audit key").endswith(f"{tmp_path / 'qiao-kek.json'} (mode 0600)")
    assert _line(result.stdout, "audit log").startswith("ok    audit log   verified: ")
    assert result.stdout.endswith("The deployment is healthy.\n")


def test_data_files_are_private_and_doctor_warns_about_looser_modes(
    qiao: Run, tmp_path: Path
) -> None:
    qiao("init", str(tmp_path))
    database = tmp_path / "qiao.db"
    db = Database(f"sqlite:///{database}")
    with db.write() as conn:  # the -wal and -shm files exist while a connection is open
        conn.execute(text("CREATE TABLE probe (id INTEGER)"))
        files = [database, tmp_path / "qiao.db-wal", tmp_path / "qiao.db-shm"]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
    db.dispose()
    config = str(tmp_path / "qiao.toml")
    qiao("--config", config, "backup", "create", str(tmp_path / "nightly.bak"))
    assert stat.S_IMODE((tmp_path / "nightly.bak").stat().st_mode) == 0o600
    result = qiao("--config", config, "doctor")
    assert _line(result.stdout, "file modes").startswith("ok ")
    database.chmod(0o644)
    (tmp_path / "nightly.bak").chmod(0o640)
    result = qiao("--config", config, "doctor")  # a warning, not a failure
    line = _line(result.stdout, "file modes")
    assert line.startswith("warn") and f"{database} (0644)" in line
    assert f"{tmp_path / 'nightly.bak'} (0640)" in line
    assert "fix: chmod 600" in result.stdout


def test_an_unsafe_or_missing_key_file_fails(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    key = tmp_path / "qiao-kek.json"
    key.chmod(0o644)
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
    line = _line(result.stdout, "key file")
    assert line.startswith("FAIL")
    assert "has mode 0644" in line and f"chmod 600 {key}" in line
    # qiao init names the same file for [keys] and [audit]: both checks fail, and the
    # provider, which reads it, too.
    assert _line(result.stdout, "audit key").startswith("FAIL")
    assert _line(result.stdout, "key provider").startswith("FAIL")
    assert result.stderr == "Error: 3 checks failed\n"
    key.unlink()
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
    assert "is missing" in _line(result.stdout, "key file")
    assert "fix: restore it from your key backup" in result.stdout


def test_pending_migrations_and_an_unreachable_database_fail(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path]
) -> None:
    config = write_config(tmp_path / "qiao.toml", f"sqlite:///{tmp_path / 'new.db'}")
    result = qiao("--config", str(config), "doctor", expect=1)
    assert _line(result.stdout, "database").startswith("ok ")
    assert _line(result.stdout, "migrations").startswith("FAIL  migrations  behind the metadata")
    assert "fix: run 'qiao migrate'" in result.stdout
    assert _line(result.stdout, "key file").startswith("skip  key file    no [keys] file")
    assert _line(result.stdout, "audit key").startswith("skip  audit key   no [audit] key_file")
    assert _line(result.stdout, "audit log").startswith("skip  audit log   needs the migrations")
    make_config(config, "postgresql://nobody@127.0.0.1:9/none")
    result = qiao("--config", str(config), "doctor", expect=1)
    assert _line(result.stdout, "database").startswith("FAIL  database    postgresql://")
    assert _line(result.stdout, "migrations").startswith("skip")
    assert result.stderr == "Error: 1 check failed\n"


def test_no_deployment_and_a_missing_plugin_fail(
    qiao: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = qiao("doctor", expect=1)
    assert _line(result.stdout, "config").startswith("FAIL  config      no qiao.toml here")
    (tmp_path / "qiao.toml").write_text('[plugins]\nenabled = ["crm", "bakery"]\n', "utf-8")
    result = qiao("doctor", expect=1)
    assert "plugin 'bakery' is enabled but not installed" in _line(result.stdout, "plugins")


@pytest.fixture
def qiao_audited_setup() -> bool:
    """The log starts empty here, keyed by the audit key file of the test's own."""
    return False


@pytest.fixture
def audited(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path], qiao: Run
) -> Path:
    """A migrated deployment with an audit key file of its own and two audited users."""
    config = make_config(tmp_path / "qiao.toml", qiao_database_url)
    generate_key_file(tmp_path / "audit.key")
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    settings["audit"] = {"key_file": "audit.key"}
    config.write_text(tomli_w.dumps(settings), encoding="utf-8")
    qiao("--config", str(config), "migrate")
    qiao("--config", str(config), "audit", "init-key")
    for name in ("wang.fang", "li.na"):
        qiao("--config", str(config), "user", "create", name)
    return config


def test_the_audit_key_must_be_0600_or_0400(qiao: Run, audited: Path) -> None:
    key = audited.parent / "audit.key"
    result = qiao("--config", str(audited), "doctor")
    assert _line(result.stdout, "audit key") == f"ok    audit key   {key} (mode 0600)"
    assert _line(result.stdout, "audit log") == (
        "ok    audit log   verified: entries 1 to 2 (2 entries)"
    )
    key.chmod(0o400)
    result = qiao("--config", str(audited), "doctor")
    assert _line(result.stdout, "audit key") == f"ok    audit key   {key} (mode 0400)"
    key.chmod(0o640)
    result = qiao("--config", str(audited), "doctor", expect=1)
    line = _line(result.stdout, "audit key")
    assert line.startswith("FAIL") and "has mode 0640" in line and f"chmod 600 {key}" in line
    assert _line(result.stdout, "audit log").startswith("skip  audit log   needs the migrations")
    assert result.stderr == "Error: 1 check failed\n"
    key.unlink()
    result = qiao("--config", str(audited), "doctor", expect=1)
    assert _line(result.stdout, "audit key") == f"FAIL  audit key   {key} is missing"
    assert "fix: restore it from your key backup (docs/audit.md)" in result.stdout


def test_a_tampered_audit_log_fails(qiao: Run, audited: Path, qiao_database_url: str) -> None:
    database = Database(qiao_database_url)
    try:
        with database.write() as conn:
            conn.execute(text("UPDATE qiao_audit_entry SET actor = 'nobody' WHERE sequence = 2"))
    finally:
        database.dispose()
    result = qiao("--config", str(audited), "doctor", expect=1)
    line = _line(result.stdout, "audit log")
    assert (
        line
        == "FAIL  audit log   does NOT verify: entry 2 does not verify: it was altered, "
        + ("forged, or moved from another place in the log")
    )
    assert "fix: the log was changed outside Qiao" in result.stdout
    assert _line(result.stdout, "audit key").startswith("ok ")
    assert result.stderr == "Error: 1 check failed\n"


def test_settings_naming_outside_hosts_are_warned_about(
    qiao: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qiao("init", str(tmp_path))
    config = tmp_path / "qiao.toml"
    result = qiao("--config", str(config), "doctor")
    assert _line(result.stdout, "network") == (
        "ok    network     no setting names a host outside this network"
    )
    with config.open("a", encoding="utf-8") as settings:
        settings.write(
            '\n[leads.notify]\nurl = "https://hooks.example.com/notify"\n'
            'mirror = "http://10.2.3.4/pkgs"\n'
            '\n[connectors.wecom]\nbase_url = "https://qyapi.weixin.qq.com"\n'
        )
    monkeypatch.setenv("QIAO_EXPORT_URL", "https://8.8.8.8/upload")
    result = qiao("--config", str(config), "doctor")  # a warning does not fail
    line = _line(result.stdout, "network")
    assert line == (
        "warn  network     settings name hosts outside this network: "
        "[leads.notify] url -> hooks.example.com; QIAO_EXPORT_URL -> 8.8.8.8"
    )
    assert "fix: on a network with no way out, point them at hosts inside it" in result.stdout
    assert result.stdout.endswith("The deployment is healthy (see the warnings above).\n")


def test_a_controllable_clock_is_a_warning_and_with_production_a_failure(
    qiao: Run, tmp_path: Path
) -> None:
    qiao("init", str(tmp_path))
    config = tmp_path / "qiao.toml"
    assert _line(qiao("--config", str(config), "doctor").stdout, "clock") == (
        "ok    clock       follows real time"
    )
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "\n[clock]\ncontrollable = true\n", encoding="utf-8")
    result = qiao("--config", str(config), "doctor")
    assert _line(result.stdout, "clock").startswith("warn  clock       [clock] controllable")
    assert "never for real users" in result.stdout
    changed = text.replace("production = false", "production = true")
    config.write_text(changed + "\n[clock]\ncontrollable = true\n", encoding="utf-8")
    result = qiao("--config", str(config), "doctor", expect=1)
    assert _line(result.stdout, "clock").startswith("FAIL  clock")


def test_the_database_is_reported_as_the_process_would_reach_it(
    qiao: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qiao("init", str(tmp_path))
    monkeypatch.setenv("QIAO_DATABASE_URL", "postgresql://qiao@pg.example.net:9/qiao")
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
    assert _line(result.stdout, "network").endswith("QIAO_DATABASE_URL -> pg.example.net")
    for inside in ("postgres", "qiao-pg.db.svc.cluster.local", "db.internal", "192.168.1.20"):
        monkeypatch.setenv("QIAO_DATABASE_URL", f"postgresql://qiao@{inside}:9/qiao")
        result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
        assert _line(result.stdout, "network").startswith("ok "), inside


def test_an_unknown_key_provider_fails(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    config = tmp_path / "qiao.toml"
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    settings["keys"] = {"provider": "sdf", "device": "/etc/sdf.conf"}
    config.write_text(tomli_w.dumps(settings), encoding="utf-8")
    result = qiao("--config", str(config), "doctor", expect=1)
    line = _line(result.stdout, "key provider")
    assert line.startswith("FAIL") and "'sdf' is unknown; use one of file, env, pkcs11" in line
