"""What the template upgrade tests share: a template's versions on one test database.

An upgrade test installs the version kept beside it (as it shipped) with its demo
records, then opens the same database under the current version and migrates:
that migration is the upgrade a deployment gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qiao.core.config import Config
from qiao.core.market.package import TemplatePackage
from qiao.core.runtime import Runtime


class TemplateVersions:
    """Runtimes of a template's versions on the test database, closed when the test ends."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.made: list[Runtime] = []

    def install(self, folder: Path) -> Runtime:
        """The template in ``folder`` installed with its demo records."""
        package = TemplatePackage.load(folder)
        runtime = self._open(package)
        runtime.migrate(demo_of=[package.name])
        return runtime

    def upgrade(self, folder: Path) -> tuple[Runtime, str]:
        """The database under the template in ``folder``, and its migration's plan as rendered."""
        runtime = self._open(TemplatePackage.load(folder))
        return runtime, runtime.migrate().plan.render()

    def close(self) -> None:
        for runtime in self.made:
            runtime.close()

    def _open(self, package: TemplatePackage) -> Runtime:
        runtime = Runtime(self.config, extra_plugins=[package])
        self.made.append(runtime)
        return runtime


@pytest.fixture
def template_versions(qiao_config: Config) -> Iterator[TemplateVersions]:
    versions = TemplateVersions(qiao_config)
    yield versions
    versions.close()
