"""qiao doctor: each check, what it reports, and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Run = Callable[..., Result]


def _line(output: str, check: str) -> str:
    (line,) = [line for line in output.splitlines() if line[6:].startswith(check)]
    return line


def test_a_new_deployment_is_healthy(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor")
    for check in ("config", "plugins", "database", "migrations", "key file", "templates"):
        assert _line(result.stdout, check).startswith("ok ")
    assert "(mode 0600, current KEK file:v1)" in _line(result.stdout, "key file")
    assert result.stdout.endswith("The deployment is healthy.\n")


def test_an_unsafe_or_missing_key_file_fails(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    key = tmp_path / "qiao-kek.json"
    key.chmod(0o644)
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
    line = _line(result.stdout, "key file")
    assert line.startswith("FAIL")
    assert "has mode 0644" in line and f"chmod 600 {key}" in line
    assert result.stderr == "Error: 1 check failed\n"
    key.unlink()
    result = qiao("--config", str(tmp_path / "qiao.toml"), "doctor", expect=1)
    assert "is missing" in _line(result.stdout, "key file")
    assert "fix: restore it from your key backup" in result.stdout


def test_pending_migrations_and_an_unreachable_database_fail(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path]
) -> None:
    config = make_config(tmp_path / "qiao.toml", f"sqlite:///{tmp_path / 'new.db'}")
    result = qiao("--config", str(config), "doctor", expect=1)
    assert _line(result.stdout, "database").startswith("ok ")
    assert _line(result.stdout, "migrations").startswith("FAIL  migrations  behind the metadata")
    assert "fix: run 'qiao migrate'" in result.stdout
    assert _line(result.stdout, "key file").startswith("skip  key file    no [keys] file")
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
