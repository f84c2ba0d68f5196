"""Reading and rewriting a deployment's qiao.toml as a document.

:class:`~qiao.core.config.Config` reads what a running process needs and
ignores the rest; the commands that change the file (``template install``,
``uninstall``, ``plugin enable``) need every table kept as written. The file is
rewritten with tomli_w, keeping its leading comment block, atomically and with
its permission bits, so a crash never leaves half a configuration behind.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from qiao.core.config import CONFIG_FILE, Config
from qiao.core.errors import ConfigurationError

#: ``[keys]`` names the key provider and its key file, relative to the deployment folder.
KEYS_TABLE = "keys"


@dataclass
class SettingsFile:
    path: Path
    data: dict[str, Any]
    header: str

    @classmethod
    def of(cls, config: Config) -> SettingsFile:
        """The file ``config`` was read from; commands that change it need one."""
        if config.path is None:
            raise ConfigurationError(
                f"no {CONFIG_FILE} here; run this in a deployment folder (see 'qiao init') "
                "or name its file with --config"
            )
        return cls.read(config.path)

    @classmethod
    def to_change(cls, config: Config) -> SettingsFile:
        """The file, for a command that changes the plugins it enables.

        Refused when ``QIAO_PLUGINS`` overrides the list, since what would be
        written is not what runs.
        """
        settings = cls.of(config)
        if tuple(settings.enabled) != config.plugins:
            raise ConfigurationError(
                "QIAO_PLUGINS overrides the plugins of qiao.toml; unset it to change them"
            )
        return settings

    @classmethod
    def read(cls, path: Path) -> SettingsFile:
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
        lines = text.splitlines(keepends=True)
        header = "".join(line for line in _leading_comments(lines))
        return cls(path, data, header)

    @property
    def enabled(self) -> list[str]:
        return list(self.data.get("plugins", {}).get("enabled", Config.plugins))

    @enabled.setter
    def enabled(self, names: list[str]) -> None:
        self.data.setdefault("plugins", {})["enabled"] = names

    def key_file(self) -> Path | None:
        """The key file of the ``[keys]`` table, or ``None`` when the deployment names none."""
        name = self.data.get(KEYS_TABLE, {}).get("file")
        return None if name is None else (self.path.parent / str(name))

    def save(self) -> None:
        """Replace the file atomically, with the same permission bits."""
        mode = stat.S_IMODE(self.path.stat().st_mode)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(self.header + tomli_w.dumps(self.data))
            temp.replace(self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def _leading_comments(lines: list[str]) -> list[str]:
    kept = []
    for line in lines:
        if not line.startswith("#") and line.strip():
            break
        kept.append(line)
    return kept
