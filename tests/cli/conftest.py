"""Running ``qiao`` in-process against a deployment whose qiao.toml names the test database."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner, Result

from qiao.cli.main import cli

Run = Callable[..., Result]
OVERRIDES = ("QIAO_CONFIG", "QIAO_DATABASE_URL", "QIAO_PLUGINS", "QIAO_HOST", "QIAO_PORT")


KEY_FILE = "qiao-kek.json"


def write_config(path: Path, url: str, key_file: Path | None = None, **server: Any) -> Path:
    """A qiao.toml for ``url`` as ``qiao init`` writes one: with ``key_file``, a copy of it
    (0600) beside the file, named under [keys] and [audit]. The test databases' audit keys
    are wrapped by the session's key file; a copy lets a test rotate its own."""
    settings: dict[str, Any] = {
        "database": {"url": url},
        "plugins": {"enabled": ["crm"]},
        "metadata": {"check_interval": 0},
    }
    if key_file is not None:
        copy = path.parent / KEY_FILE
        if not copy.exists():
            shutil.copyfile(key_file, copy)
            copy.chmod(0o600)
        settings["keys"] = {"provider": "file", "file": KEY_FILE}
        settings["audit"] = {"key_file": KEY_FILE}
    if server:
        settings["server"] = server
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return path


def invoke(*args: str, expect: int = 0, input: str | None = None) -> Result:
    """Run ``qiao ARGS`` (``input`` typed at its prompts); the exit code must be ``expect``."""
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == expect, result.output
    return result


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own QIAO_* variables must not reach the commands under test."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def qiao() -> Run:
    """``qiao ARGS``, in-process; ``expect`` is the exit code the test requires."""
    return invoke


@pytest.fixture
def make_config(qiao_key_file: Path) -> Callable[..., Path]:
    """``make_config(path, url, **server)`` writes a qiao.toml for a test database URL."""
    return functools.partial(write_config, key_file=qiao_key_file)


@pytest.fixture
def config_file(tmp_path: Path, qiao_database_url: str, qiao_key_file: Path) -> Path:
    return write_config(tmp_path / "qiao.toml", qiao_database_url, qiao_key_file)


@pytest.fixture
def run(config_file: Path) -> Run:
    """``qiao --config <the test deployment> ARGS``."""

    def run(*args: str, expect: int = 0, input: str | None = None) -> Result:
        return invoke("--config", str(config_file), *args, expect=expect, input=input)

    return run
