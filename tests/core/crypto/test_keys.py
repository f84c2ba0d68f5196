"""Key providers, key files and the wrapping of data keys."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from qiao.core.crypto import keys
from qiao.core.crypto.errors import InsecureKeyFileError, KeyUnavailableError
from qiao.core.crypto.keys import (
    EnvKeyProvider,
    FileKeyProvider,
    WrappedDataKey,
    add_kek_version,
    generate_key_file,
    unwrap_data_key,
    wrap_data_key,
)
from qiao.core.crypto.sm4gcm import DataKey, FieldContext, Keyring, open_text, seal_text

KEK_HEX = "00112233445566778899aabbccddeeff"
CONTEXT = FieldContext("account", "phone", "0193a5b2-7c4e-7d1a-9f3b-2a6c8e0d4f51")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "qiao.keys"
    generate_key_file(path)
    return path


def _write_key_file(path: Path, document: object, mode: int = 0o600) -> Path:
    path.write_text(json.dumps(document))
    path.chmod(mode)
    return path


# Key files ----------------------------------------------------------------------------


def test_generated_key_file_is_private_and_holds_version_1(key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    document = json.loads(key_file.read_text())
    assert document["current"] == 1
    assert len(bytes.fromhex(document["kek"]["1"])) == 16
    assert FileKeyProvider(key_file).kek_id == "file:v1"


def test_generated_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "qiao.keys")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "qiao.keys").stat().st_mode) == 0o600


def test_an_existing_key_file_is_never_overwritten(key_file: Path) -> None:
    before = key_file.read_bytes()
    with pytest.raises(FileExistsError, match="left untouched"):
        generate_key_file(key_file)
    assert key_file.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700, 0o644 | stat.S_ISUID])
def test_key_file_with_loose_permissions_is_refused(key_file: Path, mode: int) -> None:
    key_file.chmod(mode)
    with pytest.raises(InsecureKeyFileError, match=f"mode {mode:04o}.*chmod 600 {key_file}"):
        FileKeyProvider(key_file)


def test_read_only_key_file_is_accepted(key_file: Path) -> None:
    key_file.chmod(0o400)
    assert FileKeyProvider(key_file).kek_id == "file:v1"


def test_key_file_of_another_user_is_refused(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = key_file.stat().st_uid
    monkeypatch.setattr(keys.os, "geteuid", lambda: owner + 1)
    with pytest.raises(InsecureKeyFileError, match=f"belongs to uid {owner}"):
        FileKeyProvider(key_file)


def test_missing_key_file_says_to_restore_it(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailableError, match="does not exist; restore it"):
        FileKeyProvider(tmp_path / "absent.keys")


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "qiao.keys"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyUnavailableError, match="not a regular file"):
        FileKeyProvider(directory)


def test_key_file_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "qiao.keys"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyUnavailableError, match="not a regular file"):
        FileKeyProvider(fifo)


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "qiao.keys"
    path.write_bytes(b" " * (1024 * 1024 + 1))
    path.chmod(0o600)
    with pytest.raises(KeyUnavailableError, match="larger than 1 MiB"):
        FileKeyProvider(path)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "expected a JSON object"),
        ({"kek": {"1": KEK_HEX}}, "expected a JSON object"),
        ({"current": 1, "kek": {"1": KEK_HEX}, "extra": 1}, "expected a JSON object"),
        ({"current": True, "kek": {"1": KEK_HEX}}, '"current" must be a KEK version'),
        ({"current": 1, "kek": {}}, "holds no KEK"),
        ({"current": 2, "kek": {"1": KEK_HEX}}, "names KEK version 2"),
        ({"current": 0, "kek": {"0": KEK_HEX}}, "KEK version '0' is not a whole number"),
        ({"current": 1, "kek": {"v1": KEK_HEX}}, "KEK version 'v1' is not a whole number"),
        ({"current": 1, "kek": {"4294967296": KEK_HEX}}, "not a whole number"),
        ({"current": 1, "kek": {"1": 5}}, "not a string of 32 hex digits"),
        ({"current": 1, "kek": {"1": "zz" * 16}}, "holds other characters"),
        ({"current": 1, "kek": {"1": KEK_HEX * 2}}, "holds 64"),
    ],
)
def test_corrupt_key_file_is_refused_without_quoting_it(
    tmp_path: Path, document: object, reason: str
) -> None:
    path = _write_key_file(tmp_path / "qiao.keys", document)
    with pytest.raises(KeyUnavailableError, match=f"key file {path} is corrupt") as caught:
        FileKeyProvider(path)
    assert reason in str(caught.value)
    assert KEK_HEX not in str(caught.value)


def test_key_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "qiao.keys"
    path.write_bytes(b"\xff\xfe not json")
    path.chmod(0o600)
    with pytest.raises(KeyUnavailableError, match="corrupt: it is not UTF-8"):
        FileKeyProvider(path)


# Wrapping data keys -------------------------------------------------------------------


def test_data_key_round_trips_through_a_key_file(key_file: Path) -> None:
    dek = DataKey.generate("dek-account-1")
    token = seal_text("13800138000", dek, CONTEXT)
    stored = wrap_data_key(FileKeyProvider(key_file), dek)
    assert stored.key_id == "dek-account-1"
    assert stored.kek_id == "file:v1"
    assert dek.secret not in stored.wrapped
    assert "wrapped" not in repr(stored).split("(", 1)[1]

    restarted = unwrap_data_key(FileKeyProvider(key_file), stored, messages_sealed=1)
    assert restarted.secret == dek.secret
    assert restarted.messages_sealed == 1
    assert open_text(token, Keyring([restarted]), CONTEXT) == "13800138000"


def test_on_seal_is_carried_to_the_unwrapped_key(key_file: Path) -> None:
    provider = FileKeyProvider(key_file)
    seen: list[int] = []
    stored = wrap_data_key(provider, DataKey.generate("dek-1"))
    dek = unwrap_data_key(
        provider, stored, messages_sealed=7, on_seal=lambda k: seen.append(k.messages_sealed)
    )
    seal_text("x", dek, CONTEXT)
    assert seen == [8]


def test_a_new_kek_version_keeps_old_wraps_readable(key_file: Path) -> None:
    key_file.chmod(0o400)
    old = wrap_data_key(FileKeyProvider(key_file), DataKey.generate("dek-1"))
    assert add_kek_version(key_file) == 2
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o400
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]

    provider = FileKeyProvider(key_file)
    assert provider.kek_id == "file:v2"
    new = wrap_data_key(provider, DataKey.generate("dek-2"))
    assert new.kek_id == "file:v2"
    assert unwrap_data_key(provider, old).key_id == "dek-1"
    assert unwrap_data_key(provider, new).key_id == "dek-2"


def test_unknown_kek_version_names_it_and_the_fix(key_file: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale.keys"
    shutil.copy2(key_file, stale)
    add_kek_version(key_file)
    stored = wrap_data_key(FileKeyProvider(key_file), DataKey.generate("dek-1"))
    with pytest.raises(KeyUnavailableError) as caught:
        unwrap_data_key(FileKeyProvider(stale), stored)
    message = str(caught.value)
    assert "KEK version 2" in message
    assert f"key file {stale} does not hold (it has 1)" in message
    assert "restore version 2 from your key backup" in message


def test_wrong_kek_cannot_unwrap(key_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.keys"
    generate_key_file(other)
    stored = wrap_data_key(FileKeyProvider(key_file), DataKey.generate("dek-1"))
    with pytest.raises(KeyUnavailableError, match=r"KEK version 1 from key file .* cannot unwrap"):
        unwrap_data_key(FileKeyProvider(other), stored)


def test_altered_wrapped_key_is_refused(key_file: Path) -> None:
    provider = FileKeyProvider(key_file)
    stored = wrap_data_key(provider, DataKey.generate("dek-1"))
    for position in (1, 4, 5, 20, len(stored.wrapped) - 1):
        wrapped = bytearray(stored.wrapped)
        wrapped[position] ^= 0x01
        altered = WrappedDataKey(stored.key_id, stored.kek_id, bytes(wrapped))
        with pytest.raises(KeyUnavailableError):
            unwrap_data_key(provider, altered)


@pytest.mark.parametrize("wrapped", [b"", b"\x01" * 20, b"\x02" + bytes(60)])
def test_damaged_wrapped_key_is_refused(key_file: Path, wrapped: bytes) -> None:
    stored = WrappedDataKey("dek-1", "file:v1", wrapped)
    with pytest.raises(KeyUnavailableError, match="damaged or in an unknown format"):
        unwrap_data_key(FileKeyProvider(key_file), stored)


def test_wrapped_keys_swapped_between_ids_are_refused(key_file: Path) -> None:
    provider = FileKeyProvider(key_file)
    account = wrap_data_key(provider, DataKey.generate("dek-account-1"))
    contact = wrap_data_key(provider, DataKey.generate("dek-contact-1"))
    swapped = WrappedDataKey(account.key_id, account.kek_id, contact.wrapped)
    with pytest.raises(KeyUnavailableError, match="'dek-account-1' was wrapped for another key"):
        unwrap_data_key(provider, swapped)


def test_wrapping_refuses_short_secrets(key_file: Path) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        FileKeyProvider(key_file).wrap(bytes(15))


# The environment provider -------------------------------------------------------------


def test_env_provider_wraps_and_unwraps() -> None:
    provider = EnvKeyProvider({"QIAO_KEK": f" {KEK_HEX}\n"})
    assert provider.kek_id == "env:v1"
    stored = wrap_data_key(provider, DataKey.generate("dek-1"))
    again = EnvKeyProvider({"QIAO_KEK": KEK_HEX.upper()})
    assert unwrap_data_key(again, stored).key_id == "dek-1"


def test_env_provider_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIAO_KEK", KEK_HEX)
    assert EnvKeyProvider().kek_id == "env:v1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "QIAO_KEK is not set"),
        ({"QIAO_KEK": "  "}, "QIAO_KEK is not set"),
        ({"QIAO_KEK": "not hex at all"}, "QIAO_KEK must be 32 hex digits.*other characters"),
        ({"QIAO_KEK": KEK_HEX[:30]}, "QIAO_KEK must be 32 hex digits.*holds 30"),
    ],
)
def test_env_provider_refuses_a_missing_or_bad_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(KeyUnavailableError, match=message):
        EnvKeyProvider(environ)


class _FixedProvider:
    """A provider that unwraps everything to one payload, as a faulty HSM might."""

    kek_id = "fixed:v1"

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def wrap(self, dek: bytes) -> bytes:
        return dek

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "was wrapped for another key id"),
        (b"\x05dek-1" + bytes(8), "holds 8 bytes, not a 16-byte SM4 data key"),
        (b"\x05dek-2" + bytes(16), "was wrapped for another key id"),
    ],
)
def test_unwrapped_payload_is_checked_whatever_the_provider(payload: bytes, message: str) -> None:
    stored = WrappedDataKey("dek-1", "fixed:v1", b"opaque")
    with pytest.raises(KeyUnavailableError, match=message):
        unwrap_data_key(_FixedProvider(payload), stored)
