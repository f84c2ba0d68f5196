"""Qiao's pytest plugin provides the fixtures; this enables the template under test."""

from __future__ import annotations

import pytest


@pytest.fixture
def qiao_enabled_plugins() -> tuple[str, ...]:
    return ("crm", "{{ cookiecutter.name }}")
