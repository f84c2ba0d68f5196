"""Type-check, strictly, the surfaces others build on (`qiao.api`, the records service and
its change feed) and the built-in plugins and templates that build on `qiao.api` alone
(`qiao.plugins`, `qiao.templates_market`): a plugin reaching past the API's protocols is an
error here, not at run time.

Qiao's top-level folders install under one `qiao` namespace through a
package-dir mapping (api/ is `qiao.api`, core/ is `qiao.core`, ...), which the
editable install resolves with an import hook that type checkers cannot read.
So this script lays out the same namespace as symbolic links under
build/typecheck and points mypy at it. Settings are in pyproject.toml
([tool.mypy]); the modules checked are listed here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("api", "cli", "core", "plugins", "templates_market")
CHECKED = (
    *("-p", "qiao.api"),
    *("-m", "qiao.core.records.service", "-m", "qiao.core.records.changes"),
    *("-p", "qiao.plugins", "-p", "qiao.templates_market"),
)


def namespace_tree() -> Path:
    """build/typecheck/qiao/<folder> linked to each top-level folder; its parent is returned."""
    base = ROOT / "build" / "typecheck"
    package = base / "qiao"
    package.mkdir(parents=True, exist_ok=True)
    for folder in FOLDERS:
        link = package / folder
        if not link.is_symlink():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    return base


def main() -> int:
    base = namespace_tree()
    os.chdir(base)
    os.environ["MYPYPATH"] = str(base)
    config = str(ROOT / "pyproject.toml")
    cache = str(ROOT / "build" / "mypy-cache")
    out, err, status = api.run(["--config-file", config, "--cache-dir", cache, *CHECKED])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
