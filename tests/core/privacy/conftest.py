"""A clinic declaring consent and retention rules in its manifest (docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from qiao.core.hookmarkers import hookimpl

MANIFEST = Path(__file__).with_name("clinic.yaml")


class Clinic:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


CLINIC = Clinic()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [CLINIC]
