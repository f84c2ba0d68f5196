"""qiao.toml's serving settings: the pool and the access log."""

from __future__ import annotations

from pathlib import Path

import pytest

from qiao.core.config import Config
from qiao.core.errors import ConfigurationError
from qiao.core.storage.database import PoolSettings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qiao.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_keep_a_pool_and_no_access_log(tmp_path: Path) -> None:
    config = Config.from_file(_write(tmp_path, '[database]\nurl = "sqlite:///q.db"\n'))
    assert config.pool == PoolSettings()
    assert config.access_log is False


def test_pool_and_access_log_come_from_the_file(tmp_path: Path) -> None:
    config = Config.from_file(
        _write(
            tmp_path,
            '[database]\nurl = "sqlite:///q.db"\npool_size = 4\nmax_overflow = 0\n'
            "read_pool_size = 0\n\n[server]\naccess_log = true\n",
        )
    )
    assert config.pool == PoolSettings(size=4, overflow=0, reads=0)
    assert config.access_log is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[database]\npool_size = 0\n", "pool_size must be at least 1"),
        ("[database]\nmax_overflow = -2\n", "max_overflow must be 0 or more"),
        ("[database]\nread_pool_size = -1\n", "read_pool_size must be 0 or more"),
        ('[database]\npool_size = "many"\n', "pool_size must be a whole number"),
        ('[server]\naccess_log = "yes"\n', "access_log must be true or false"),
    ],
)
def test_bad_serving_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Config.from_file(_write(tmp_path, text))
