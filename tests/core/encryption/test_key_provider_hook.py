"""A plugin's key provider (an HSM in production) holds the KEK; Qiao never sees it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from qiao.core.config import Config
from qiao.core.errors import ConfigurationError
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system

from .conftest import ALICE, PATIENTS


class SimulatedDevice:
    """Stands in for a crypto device: the KEK lives in here and never leaves."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self._kek = AESGCM(os.urandom(16))
        self.wrapped = 0

    @property
    def kek_id(self) -> str:
        return f"device:{self.slot}"

    def wrap(self, dek: bytes) -> bytes:
        self.wrapped += 1
        nonce = os.urandom(12)
        return nonce + self._kek.encrypt(nonce, dek, self.slot.encode())

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._kek.decrypt(wrapped[:12], wrapped[12:], self.slot.encode())


class DevicePlugin:
    __name__ = "device_keys"

    def __init__(self) -> None:
        self.devices: list[SimulatedDevice] = []

    @hookimpl
    def qiao_key_providers(self) -> dict[str, Any]:
        def open_device(options: Mapping[str, Any]) -> SimulatedDevice:
            if "slot" not in options:
                raise ConfigurationError('[keys] provider = "device" needs slot = "<n>"')
            if not self.devices:
                self.devices.append(SimulatedDevice(str(options["slot"])))
            return self.devices[0]

        return {"device": open_device}


DEVICE = DevicePlugin()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [PATIENTS, DEVICE]


@pytest.fixture
def qiao_config(qiao_config: Config, tmp_path: Path) -> Config:
    toml = tmp_path / "qiao.toml"
    toml.write_text('[keys]\nprovider = "device"\nslot = "7"\n', encoding="utf-8")
    return dataclasses.replace(qiao_config, path=toml, root=tmp_path)


def test_fields_are_sealed_under_keys_the_device_wraps(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        patient = records.create(ctx, "patient", ALICE)
    with qiao_runtime.db.read() as conn:
        assert (
            records.get(conn, "patient", patient["id"], actor=Actor.system())["diagnosis"]
            == "高血压"
        )
        stored = conn.execute(select(system.data_key.c.kek_id)).scalars().all()
    assert stored and set(stored) == {"device:7"}
    assert DEVICE.devices[0].wrapped >= 1


def test_an_unknown_provider_names_the_choices(qiao_config: Config, tmp_path: Path) -> None:
    toml = tmp_path / "qiao.toml"
    toml.write_text('[keys]\nprovider = "hsm9000"\n', encoding="utf-8")
    runtime = Runtime(dataclasses.replace(qiao_config, path=toml), extra_plugins=[PATIENTS, DEVICE])
    with pytest.raises(ConfigurationError, match="file, env, pkcs11, device"):
        runtime.records.encryption.keys.provider()
    runtime.close()
