"""Machines with a trial report and a repair QR code (docs/documents.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from qiao.core.hookmarkers import hookimpl

MANIFEST = Path(__file__).with_name("machines.yaml")


class Machines:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


MACHINES = Machines()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [MACHINES]
