"""The files of a new deployment folder, rendered from the ``deployment`` scaffold.

``qiao init`` writes qiao.toml, an environment file and a systemd unit from
templates_market/scaffolds/deployment, and generates the key-encryption key
file (mode 0600) that qiao.toml names under ``[keys]``. An existing key file
is never replaced: a new key cannot read what the old one encrypted.
"""

from __future__ import annotations

import getpass
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from qiao.cli.scaffolds import render
from qiao.core.config import CONFIG_FILE, Config
from qiao.core.crypto import generate_key_file
from qiao.core.errors import ConfigurationError

KEY_FILE = "qiao-kek.json"
ENV_FILE = "qiao.env"
UNIT_FILE = "qiao.service"
#: Files that may hold secrets: only the deployment's user may read them.
PRIVATE = 0o600


def create(
    directory: Path, database_url: str, plugins: Sequence[str], *, force: bool
) -> list[Path]:
    """Write the deployment's files into ``directory``; returns those that did not exist."""
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    values = {
        "folder": "deployment",
        "root": str(root),
        "database_url": database_url,
        "plugins": ",".join(plugins),
        "key_file": KEY_FILE,
        "host": Config.host,
        "port": str(Config.port),
        "service_user": getpass.getuser(),
        "qiao_executable": _qiao_executable(),
    }
    made = []
    with tempfile.TemporaryDirectory() as temp:
        rendered = render("deployment", values, Path(temp))
        sources = sorted(rendered.iterdir())
        taken = [directory / s.name for s in sources if (directory / s.name).exists()]
        if taken and not force:
            raise ConfigurationError(
                f"{taken[0]} exists already; use another folder, or --force to overwrite it"
            )
        for source in sources:
            target = directory / source.name
            if not target.exists():
                made.append(target)
            shutil.copyfile(source, target)
    (directory / ENV_FILE).chmod(PRIVATE)
    if make_url(database_url).password is not None:
        (directory / CONFIG_FILE).chmod(PRIVATE)
    key = directory / KEY_FILE
    if not key.exists():
        generate_key_file(key)
        made.append(key)
    return made


def remove(made: Sequence[Path]) -> None:
    for path in made:
        path.unlink(missing_ok=True)


def _qiao_executable() -> str:
    """The ``qiao`` of this environment, so the unit runs the same installation."""
    beside = Path(sys.executable).parent / "qiao"
    return str(beside) if beside.exists() else shutil.which("qiao") or "qiao"
