"""The distribution: one wheel, one ``qiao`` namespace, nothing at the top level but it.

Builds the wheel from the working tree (as a release would) and compares its
contents with the source folders, so a subpackage missing from pyproject's
explicit list, or data files left behind, fail here rather than on a user's
machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {name: f"qiao/{name}" for name in ("api", "core", "cli", "plugins", "templates_market")}
#: Data files shipped next to the code: manifests, templates, and the browser files
#: (GraphiQL's page and its scripts and styles, docs/web-assets.md).
DATA_SUFFIXES = {".yaml", ".mako", ".html", ".js", ".css", ".json", ".txt"}
IGNORED = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", "demo"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ into the source tree, and test
    # processes running side by side would otherwise share it.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = out.glob("qiao_crm-*.whl")
    return zipfile.ZipFile(path)


def source_files() -> set[str]:
    """Every module and data file of the package folders, as the wheel should name it."""
    expected = set()
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if "__pycache__" in path.parts or "scaffolds" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.suffix in DATA_SUFFIXES:
                expected.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    return expected


def test_the_wheel_holds_every_module_and_data_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = source_files() - names
    assert not missing, f"missing from the wheel (add to pyproject's packages): {sorted(missing)}"


def test_nothing_but_qiao_is_installed_at_the_top_level(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"qiao"}
    assert not any(n.startswith("qiao/__init__.py") for n in wheel.namelist())  # a namespace


def test_entry_points_register_the_cli_the_plugins_and_the_fixtures(
    wheel: zipfile.ZipFile,
) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "qiao = qiao.cli.main:main" in text
    assert "[qiao]" in text and "crm = qiao.plugins.crm" in text
    assert "[pytest11]" in text and "qiao.core.testing.pytest_plugin" in text


def test_no_test_or_benchmark_code_is_shipped(wheel: zipfile.ZipFile) -> None:
    assert not [n for n in wheel.namelist() if n.startswith(("tests/", "bench/", "qiao/tests"))]


def test_time_zones_work_without_the_systems_time_zone_data() -> None:
    """Minimal images (python:3.11-slim) have no /usr/share/zoneinfo; tzdata ships with Qiao."""
    assert any(r.startswith("tzdata") for r in metadata.requires("qiao-crm") or [])
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import zoneinfo; assert zoneinfo.TZPATH == (); "
            "import qiao.plugins.leads.notify, qiao.core.formula.evaluator; "
            "print(zoneinfo.ZoneInfo('Asia/Shanghai').key)",
        ],
        env={**os.environ, "PYTHONTZPATH": ""},  # no system folders searched
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == "Asia/Shanghai\n"
