"""A manufacturer whose devices carry QR codes that open a repair form (docs/intake.md)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from qiao.core.hookmarkers import hookimpl
from qiao.core.testing.server import LiveServer

MANIFEST = Path(__file__).with_name("service.yaml")


class Service:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


SERVICE = Service()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [SERVICE]


@pytest.fixture
def browser(qiao_server: LiveServer) -> Iterator[httpx.Client]:
    """A client with no credentials, as a phone that scanned the code."""
    with httpx.Client(base_url=qiao_server.url, timeout=30.0) as client:
        yield client
