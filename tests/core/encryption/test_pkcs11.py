"""The PKCS#11 key provider against a SoftHSM2 token: the KEK never leaves the device."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from qiao.cli.main import cli
from qiao.core.config import Config
from qiao.core.crypto import DataKey, KeyUnavailableError, unwrap_data_key, wrap_data_key
from qiao.core.crypto.hsm import PIN_ENV, Pkcs11KeyProvider, Pkcs11Settings
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.storage import system

from .conftest import ALICE, PATIENTS
from .softhsm import Token, softhsm_token


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Token:
    return softhsm_token(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def pin(token: Token, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PIN_ENV, token.pin)
    return token.pin


def keys_table(device: Token, **changes: str) -> str:
    table = {"provider": "pkcs11", "library": device.library, "token": device.label, **changes}
    return "[keys]\n" + "".join(f'{k} = "{v}"\n' for k, v in table.items())


def test_data_keys_round_trip_and_the_kek_stays_in_the_device(token: Token, pin: str) -> None:
    import pkcs11

    provider = Pkcs11KeyProvider(Pkcs11Settings(token.library, token.label, pin))
    key = DataKey.generate("dek-patient-1")
    stored = wrap_data_key(provider, key)
    assert stored.kek_id == "pkcs11:qiao-kek" and key.secret not in stored.wrapped
    assert unwrap_data_key(provider, stored).secret == key.secret
    altered = bytearray(stored.wrapped)
    altered[-1] ^= 1
    with pytest.raises(KeyUnavailableError, match="cannot unwrap"):
        provider.unwrap(bytes(altered))
    device = pkcs11.lib(token.library).get_token(token_label=token.label)
    with device.open() as session:  # the provider's session logged this process in
        kek = session.get_key(label="qiao-kek", key_type=pkcs11.KeyType.AES)
        assert kek[pkcs11.Attribute.SENSITIVE] and not kek[pkcs11.Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.PKCS11Error):
            kek[pkcs11.Attribute.VALUE]  # the device refuses to show it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": "nosuch"}, "has no token labelled 'nosuch'"),
        ({"key_label": "gone"}, "has no single AES key labelled 'gone'"),
    ],
)
def test_an_unreachable_token_or_key_is_refused_by_name(
    token: Token, pin: str, change: dict[str, str], message: str
) -> None:
    settings = dataclasses.replace(Pkcs11Settings(token.library, token.label, pin), **change)
    with pytest.raises(KeyUnavailableError, match=message):
        Pkcs11KeyProvider(settings)


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [PATIENTS]


@pytest.fixture
def qiao_config(qiao_config: Config, tmp_path: Path, token: Token, pin: str) -> Config:
    toml = tmp_path / "qiao.toml"
    toml.write_text(keys_table(token), encoding="utf-8")
    return dataclasses.replace(qiao_config, path=toml, root=tmp_path)


def test_encrypted_fields_use_keys_the_token_wraps(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        patient = records.create(ctx, "patient", ALICE)
    records.encryption.keys.forget()  # unwrapped again, by the device
    with qiao_runtime.db.read() as conn:
        read = records.get(conn, "patient", patient["id"], actor=Actor.system())
        stored = conn.execute(select(system.data_key.c.kek_id)).scalars().all()
    assert read["diagnosis"] == "高血压"
    assert set(stored) == {"pkcs11:qiao-kek"}


def doctor(config: Path, expect: int) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor"])
    assert result.exit_code == expect, result.output
    line = [li for li in result.output.splitlines() if li[6:].startswith("key provider")]
    return line[0]


def test_doctor_checks_the_device_answers(token: Token, pin: str, tmp_path: Path) -> None:
    config = tmp_path / "qiao.toml"
    database = f'[database]\nurl = "sqlite:///{tmp_path / "qiao.db"}"\n'
    config.write_text(database + keys_table(token), encoding="utf-8")
    assert doctor(config, 1).startswith("ok    key provider  pkcs11: pkcs11:qiao-kek wraps")
    config.write_text(database + keys_table(token, token="nosuch"), encoding="utf-8")
    assert "has no token labelled 'nosuch'" in doctor(config, 1)
    os.environ.pop(PIN_ENV)
    config.write_text(database + keys_table(token), encoding="utf-8")
    assert f"{PIN_ENV} is not set" in doctor(config, 1)
