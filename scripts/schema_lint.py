"""Lint the GraphQL schema deployments serve with graphql-schema-linter's default rules.

A frontend team runs graphql-schema-linter on the SDL it generates clients from
(docs/graphql.md#the-schema). The schema depends on what a deployment enables,
so this script makes one deployment per shape a user starts from (``qiao init``
with the default plugins, and with each template of the market), exports each
schema with ``qiao schema export`` and lints it. The linter comes from the npm
registry, pinned below, into build/schema-lint.

Without Node.js the check is skipped with a notice, except under ``CI=true``,
where a skipped check would hide a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "build" / "schema-lint"
#: The linter and the graphql-js it runs on, as the npm registry has them.
PACKAGES = ("graphql-schema-linter@3.0.1", "graphql@16.15.0")
#: ``qiao init`` arguments for each schema linted.
SHAPES: dict[str, tuple[str, ...]] = {
    "default": (),
    **{
        name: ("--template", name)
        for name in ("manufacturing_dealers", "education", "clinics", "law_firms")
    },
}


def linter() -> Path | None:
    """The linter's executable, installed on first use; None without npm."""
    executable = TOOLS / "node_modules" / ".bin" / "graphql-schema-linter"
    if executable.exists():
        return executable
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    TOOLS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--silent", *PACKAGES],
        check=True,
    )
    return executable


def run(args: list[str], cwd: Path | None = None) -> None:
    """Run a command of the check; on failure print what it said and stop the check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIAO_")}
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"schema lint: {' '.join(args[2:])} failed:\n{done.stdout}{done.stderr}")


def export(shape: tuple[str, ...], folder: Path) -> Path:
    """The SDL of a fresh deployment made with ``qiao init FOLDER *shape``."""
    qiao = [sys.executable, "-c", "from qiao.cli.main import main; main()"]
    run([*qiao, "init", str(folder), *shape])
    sdl = folder / "schema.graphql"
    run([*qiao, "schema", "export", "-o", str(sdl)], cwd=folder)
    return sdl


def main() -> int:
    executable = linter()
    if executable is None:
        if os.environ.get("CI") == "true":
            print("schema lint: Node.js and npm are needed under CI=true", file=sys.stderr)
            return 1
        print("==> NOTICE: no Node.js/npm here, so the GraphQL schema is not linted")
        return 0
    failed = []
    with tempfile.TemporaryDirectory(prefix="qiao-schema-lint-") as tmp:
        for name, shape in SHAPES.items():
            sdl = export(shape, Path(tmp) / name)
            done = subprocess.run([str(executable), str(sdl)], capture_output=True, text=True)
            if done.returncode != 0:
                failed.append(name)
                print(f"schema lint: the {name} deployment's schema fails:\n{done.stdout}")
            else:
                print(f"    {name}: the schema passes graphql-schema-linter's default rules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
