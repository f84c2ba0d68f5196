"""qiao plugin new and qiao template new: packages that install with pip and pass their tests.

The slow tests prove it as a user would see it: generate the package, install
it with pip into a new virtual environment, and run its own tests there. The
new environment reaches Qiao and its dependencies through a ``.pth`` line that
adds this environment's site-packages, so nothing but the generated package is
installed and this environment is left as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from qiao.core.market.package import TemplatePackage

Run = Callable[..., Result]


def _fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    (Path(purelib) / "qiao-parent.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8"
    )
    return python


def _install_and_test(package: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    python = _fresh_venv(venv)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QIAO_", "PYTEST_")) or k == "QIAO_TEST_POSTGRES_URL"
    }
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(package)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package / "tests",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plugin", "template"])
def test_a_generated_package_installs_and_passes_its_tests(
    qiao: Run, tmp_path: Path, kind: str
) -> None:
    result = qiao(kind, "new", "field_service", "--directory", str(tmp_path))
    package = tmp_path / "qiao-field-service"
    assert f"Created {package}" in result.stdout
    tested = _install_and_test(package, tmp_path / "venv")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in tested.stdout and "failed" not in tested.stdout
    listed = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "python"),
            "-c",
            "from importlib.metadata import entry_points; "
            "print(entry_points(group='qiao')['field_service'].value)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "qiao_field_service"


def test_the_template_scaffold_is_a_template_of_the_market(qiao: Run, tmp_path: Path) -> None:
    qiao("template", "new", "bakery", "--directory", str(tmp_path))
    source = tmp_path / "qiao-bakery" / "src" / "qiao_bakery"
    assert {p.name for p in source.iterdir()} == {
        "__init__.py",
        "template.yaml",
        "entities.yaml",
        "demo.yaml",
    }
    package = TemplatePackage.load(source)
    assert package.manifest.name == "bakery"
    assert package.demo is not None and package.demo.records[-1].entity == "bakery_item"


def test_bad_names_and_existing_folders_are_refused(qiao: Run, tmp_path: Path) -> None:
    bad = qiao("plugin", "new", "Field-Service", "--directory", str(tmp_path), expect=1)
    assert "must be snake_case" in bad.stderr
    taken = qiao("plugin", "new", "crm", "--directory", str(tmp_path), expect=1)
    assert taken.stderr == "Error: a plugin named 'crm' is installed already; choose another\n"
    qiao("plugin", "new", "warranty", "--directory", str(tmp_path))
    again = qiao("plugin", "new", "warranty", "--directory", str(tmp_path), expect=1)
    assert "qiao-warranty exists already" in again.stderr
