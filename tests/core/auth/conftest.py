"""Sign-ins are audited: these deployments have an audit key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qiao.core.audit import AuditSettings
from qiao.core.config import Config
from qiao.core.crypto import generate_key_file


@pytest.fixture
def qiao_config(qiao_config: Config, tmp_path: Path) -> Config:
    key_file = tmp_path / "audit.key"
    generate_key_file(key_file)
    return dataclasses.replace(qiao_config, audit=AuditSettings(key_file=key_file))
