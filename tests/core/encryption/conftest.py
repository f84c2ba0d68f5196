"""A deployment with a ``patient`` entity whose fields are encrypted, and its key file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from qiao.core.config import Config
from qiao.core.crypto import generate_key_file
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

MANIFEST = Path(__file__).with_name("patient.yaml")


class Patients:
    """Declares the ``patient`` entity."""

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


PATIENTS = Patients()


def deployment(folder: Path, config: Config, key_file: str = "qiao-kek.json") -> Config:
    """``config`` read from a qiao.toml in ``folder`` naming ``key_file`` under [keys]."""
    toml = folder / "qiao.toml"
    toml.write_text(f'[keys]\nprovider = "file"\nfile = "{key_file}"\n', encoding="utf-8")
    return dataclasses.replace(config, path=toml, root=folder)


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [PATIENTS]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "qiao-kek.json"
    generate_key_file(path)
    return path


@pytest.fixture
def qiao_config(qiao_config: Config, tmp_path: Path, key_file: Path) -> Config:
    return deployment(tmp_path, qiao_config)


@pytest.fixture
def write(qiao_runtime: Runtime) -> Callable[..., Any]:
    """``write(lambda records, ctx: ...)`` in one transaction as the system."""
    records = qiao_runtime.records

    def _write(fn: Callable[..., Any]) -> Any:
        with records.transaction(Actor.system(), Source.CLI) as ctx:
            return fn(records, ctx)

    return _write


ALICE = {
    "name": "张三",
    "phone": "138 0013 8000",
    "email": "Zhang.San@Example.cn",
    "id_number": "11010519491231002X",
    "diagnosis": "高血压",
    "notes": "每日复查血压。",
}
