"""The import contracts of pyproject.toml hold, and really catch what they forbid.

``lint-imports`` runs in scripts/test over the whole tree; these tests show that
the plugin contract fails on a deliberate import of the core, by running the
project's own contract over a small tree shaped like Qiao's, and that the core's
layer contract fails on a deliberate upward import in a copy of the core. The
packages of the core also import each other without cycles, which the contract
cannot see among siblings that may import each other.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import grimp
import pytest
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PLUGIN_CONTRACT = "plugins-use-the-api"
LAYERS_CONTRACT = "core-layers"


def _contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    linter = config["tool"]["importlinter"]
    (contract,) = [c for c in linter["contracts"] if c["id"] == contract_id]
    return {"root_packages": linter["root_packages"], "contracts": [contract]}


def _lint(tree: Path, settings: dict[str, object]) -> subprocess.CompletedProcess[str]:
    config = tree / "contracts.toml"
    config.write_text(tomli_w.dumps({"tool": {"importlinter": settings}}), encoding="utf-8")
    return subprocess.run(
        [str(LINT), "--no-cache", str(config)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _module(tree: Path, dotted: str, text: str = "") -> None:
    path = tree.joinpath(*dotted.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(tree).parents:
        if parent.parts and parent.parts != ("qiao",):
            (tree / parent / "__init__.py").touch()
    path.with_suffix(".py").write_text(text, encoding="utf-8")


def _qiao_like(tree: Path) -> None:
    """The packages of Qiao, each with one module: plugins reach the core through the API."""
    _module(tree, "qiao.core.records", "RECORDS = 1\n")
    _module(tree, "qiao.cli.main", "from qiao.core import records\n")
    _module(tree, "qiao.api.surface", "from qiao.core.records import RECORDS\n")
    _module(tree, "qiao.plugins.crm.hooks", "from qiao.api.surface import RECORDS\n")
    _module(tree, "qiao.templates_market.clinics.hooks", "from qiao.api import surface\n")


def test_the_plugin_contract_fails_on_a_core_import(tmp_path: Path) -> None:
    _qiao_like(tmp_path)
    _module(tmp_path, "qiao.plugins.crm.sneaky", "from qiao.core.records import RECORDS\n")
    _module(tmp_path, "qiao.templates_market.clinics.cli", "import qiao.cli.main\n")
    result = _lint(tmp_path, _contract(PLUGIN_CONTRACT))
    assert result.returncode != 0
    assert "0 kept, 1 broken" in result.stdout
    assert "qiao.plugins.crm.sneaky -> qiao.core.records" in result.stdout
    assert "qiao.templates_market.clinics.cli -> qiao.cli.main" in result.stdout


def _core_copy(tree: Path) -> None:
    """The core as ``qiao.core`` under ``tree``, without caches."""
    shutil.copytree(
        ROOT / "core", tree / "qiao" / "core", ignore=shutil.ignore_patterns("__pycache__")
    )


@pytest.mark.parametrize(
    ("tree", "contract_id"),
    [(_qiao_like, PLUGIN_CONTRACT), (_core_copy, LAYERS_CONTRACT)],
    ids=["plugins-through-the-api", "the-core-as-it-is"],
)
def test_the_contract_holds(tmp_path: Path, tree: Callable[[Path], None], contract_id: str) -> None:
    tree(tmp_path)
    result = _lint(tmp_path, _contract(contract_id))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_layer_contract_fails_on_an_upward_import(tmp_path: Path) -> None:
    _core_copy(tmp_path)
    # Storage sits at the bottom; reaching up to the records service breaks the order.
    (tmp_path / "qiao/core/storage/upward.py").write_text(
        "from qiao.core.records import service\n", encoding="utf-8"
    )
    result = _lint(tmp_path, _contract(LAYERS_CONTRACT))
    assert result.returncode != 0
    assert "0 kept, 1 broken" in result.stdout
    assert "qiao.core.storage.upward -> qiao.core.records.service" in result.stdout


def _package_cycles() -> list[set[str]]:
    """The groups of two or more first-level packages of the core that import each other.

    Each package is squashed into one node of grimp's graph, so a group is a
    strongly connected set of packages however their modules reach each other;
    imports under ``TYPE_CHECKING`` count, as they do for the layer contract.
    """
    graph = grimp.build_graph("qiao.core", cache_dir=None)
    packages = graph.find_children("qiao.core")
    for package in packages:
        if graph.find_children(package):
            graph.squash_module(package)
    imports = {p: graph.find_modules_directly_imported_by(p) & packages - {p} for p in packages}
    reach: dict[str, set[str]] = {}
    for package in packages:
        seen: set[str] = set()
        todo = [package]
        while todo:
            new = imports[todo.pop()] - seen
            seen |= new
            todo += new
        reach[package] = seen
    groups = {frozenset({p} | {q for q in reach[p] if p in reach[q]}) for p in packages}
    return [{name.removeprefix("qiao.core.") for name in g} for g in groups if len(g) > 1]


def test_the_core_packages_import_each_other_without_cycles() -> None:
    """Each package has a layer of its own: the runtime, the plugin manager, the hooks, events."""
    assert _package_cycles() == []


#: The only imports inside functions in the core: none may dodge an import cycle.
NESTED_IMPORTS = {
    # Optional extras, imported where used so the core runs without them.
    "core/crypto/hsm.py": ["pkcs11", "pkcs11", "pkcs11.mechanisms"],
    # Libraries slow to import, loaded on first use instead of by every process.
    "core/documents/pdf.py": ["fpdf", "fpdf.errors"],
    # GraphQL types (strawberry, graphql-core): loaded as the schema is built, so a CLI
    # command that serves no GraphQL skips about 0.2 s of imports.
    "core/audit/plugin.py": ["qiao.core.audit.graphql"],
    "core/automation/plugin.py": ["qiao.core.automation"],
    "core/builtin.py": ["qiao.core.auth", "qiao.core.customisation.mutations"],
    "core/documents/plugin.py": ["qiao.core.documents"],
    "core/privacy/plugin.py": ["qiao.core.privacy"],
    "core/replay/plugin.py": ["qiao.core.replay"],
    "core/sync/plugin.py": ["qiao.core.sync"],
    "core/workflow/plugin.py": ["qiao.core.workflow"],
}


def _nested_imports(path: Path) -> list[str]:
    """The modules ``path`` imports below its top level (TYPE_CHECKING blocks are top level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {
        id(node)
        for statement in tree.body
        for node in ast.walk(statement)
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in top:
            continue
        if isinstance(node, ast.ImportFrom):
            found.append(node.module or "")
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return sorted(found)


def test_the_core_adds_no_imports_inside_functions() -> None:
    found = {}
    for path in sorted((ROOT / "core").rglob("*.py")):
        nested = _nested_imports(path)
        if nested:
            found[path.relative_to(ROOT).as_posix()] = nested
    assert found == {name: sorted(modules) for name, modules in NESTED_IMPORTS.items()}


#: Private attributes of strawberry and SQLAlchemy, and the one module allowed each.
PRIVATE_REACH = {
    "_raw_info": "core/graphql/strawberry_internals.py",
    "._schema": "core/graphql/strawberry_internals.py",
    "get_type_by_name": "core/graphql/strawberry_internals.py",
    "_bind_processors": "core/storage/sqlalchemy_internals.py",
}


def test_library_internals_are_reached_from_one_adapter_module_each() -> None:
    offenders = []
    for folder in ("api", "cli", "core", "plugins", "templates_market"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            relative = path.relative_to(ROOT).as_posix()
            offenders += [
                f"{relative} reaches {name}"
                for name, allowed in PRIVATE_REACH.items()
                if name in text and relative != allowed
            ]
    assert offenders == []
    for name, allowed in PRIVATE_REACH.items():
        assert name in (ROOT / allowed).read_text(encoding="utf-8")
