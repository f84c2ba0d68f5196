"""Failures are one line on stderr; --debug shows the traceback instead."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy.exc import IntegrityError

import qiao.cli
from qiao.cli.main import BUILTIN_COMMANDS
from qiao.core.redaction import REDACTED, Sensitive
from qiao.core.runtime import Runtime

Run = Callable[..., Result]


QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]


def _broken_config(tmp_path: Path) -> Path:
    path = tmp_path / "qiao.toml"
    path.write_text("[database\nurl = ", encoding="utf-8")
    return path


def test_bad_toml_is_one_line(qiao: Run, tmp_path: Path) -> None:
    result = qiao("--config", str(_broken_config(tmp_path)), "migrate", expect=1)
    assert result.stderr.startswith("Error: ")
    assert "not valid TOML" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_console_script_shows_help() -> None:
    done = subprocess.run([*QIAO, "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for command in ("init", "serve", "migrate", "user", "token", "schema", "plugin"):
        assert f"  {command} " in done.stdout


def test_every_module_of_commands_is_named_in_the_command_table() -> None:
    """``qiao`` imports a module of commands when one of them is asked for, by this table."""
    named: dict[str, str] = {}
    for module in pkgutil.iter_modules(qiao.cli.__path__):
        commands = getattr(importlib.import_module(f"qiao.cli.{module.name}"), "COMMANDS", ())
        named |= {command.name or "": module.name for command in commands}
    assert named == BUILTIN_COMMANDS


def test_a_command_loads_neither_the_web_server_nor_the_scaffolds() -> None:
    """Each ``qiao`` command is a process; what it imports and does not need, it waits for:
    the web server, the scaffolds, and GraphQL (the plugins' types load with the schema).
    The commands beside ``serve`` (``init``, ``migrate``) do not load the web server either:
    ``serve`` loads it when it runs."""
    probe = (
        "import sys\n"
        "from qiao.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('click' in sys.modules, 'uvicorn' in sys.modules,"
        " 'cookiecutter' in sys.modules, 'strawberry' in sys.modules)\n"
    )

    def loaded(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    assert loaded("doctor", "--help") == "True False False False"  # click: the probe sees
    assert loaded("serve", "--help") == "True False False False"
    assert loaded("migrate", "--help") == "True False False False"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = str(_broken_config(tmp_path))
    quiet = subprocess.run(
        [*QIAO, "--config", config, "migrate"], capture_output=True, text=True, timeout=30
    )
    assert quiet.returncode == 1
    assert quiet.stderr.count("\n") == 1
    loud = subprocess.run(
        [*QIAO, "--config", config, "--debug", "migrate"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert "ConfigurationError" in loud.stderr


def test_every_command_scrubs_its_logs(qiao: Run, tmp_path: Path) -> None:
    factory = logging.getLogRecordFactory()
    try:
        qiao("--config", str(_broken_config(tmp_path)), "migrate", expect=1)
        assert getattr(logging.getLogRecordFactory(), "scrubbed", False)
        made = logging.getLogger("qiao.cli").makeRecord(
            "qiao.cli", logging.ERROR, __file__, 1, "at %s", (Sensitive("13800138000"),), None
        )
        assert made.getMessage() == f"at {REDACTED}"
    finally:
        logging.setLogRecordFactory(factory)


def test_a_failed_statement_shows_the_databases_words_not_the_statement_or_its_values(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected database error is one line: the statement and the record values it
    carried (often many lines, sometimes personal data) stay out of the terminal."""
    refused = IntegrityError(
        "INSERT INTO contact (name, mobile) VALUES (%(name)s, %(mobile)s)",
        {"name": "王工", "mobile": "13800138000"},
        Exception('insert violates foreign key constraint "fk_contact_account"\nDETAIL: 王工'),
    )

    def fail(runtime: Runtime, **options: object) -> None:
        raise refused

    monkeypatch.setattr("qiao.cli.deployment.migrate_schema", fail)
    result = run("migrate", expect=1)
    assert result.stderr == (
        "Error: internal error (IntegrityError: insert violates foreign key constraint "
        '"fk_contact_account"); rerun with --debug for details\n'
    )
