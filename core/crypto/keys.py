"""The key hierarchy: key-encryption keys (KEKs) that wrap data keys.

Data keys (:class:`~qiao.core.crypto.sm4gcm.DataKey`) encrypt values and are
stored next to the data only in wrapped form. A :class:`KeyProvider` wraps and
unwraps them with a KEK that never leaves the provider, so a hardware security
module (PKCS#11, or a GM/T 0018 SDF cipher device) can implement the protocol
and keep the KEK inside the device.

Two software providers ship here. :class:`FileKeyProvider` reads versioned KEKs
from a JSON key file that only its owner may read; :func:`add_kek_version` adds
a version and keeps the old ones, so keys wrapped before it still unwrap while
they are re-wrapped at leisure. :class:`EnvKeyProvider` takes one KEK from the
``QIAO_KEK`` environment variable and is for development only: environment
variables can be read through ``/proc/<pid>/environ`` and end up in crash dumps
and process listings.

A wrapped data key carries its own key id inside the encryption, so wrapped
keys swapped between two rows of the key table are refused when unwrapped
instead of silently sealing one entity's values under another's key.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qiao.core.crypto.errors import (
    CryptoIntegrityError,
    InsecureKeyFileError,
    KeyUnavailableError,
)
from qiao.core.crypto.sm4gcm import (
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    DataKey,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

KEK_ENV_VAR = "QIAO_KEK"
ALLOWED_KEY_FILE_MODES = frozenset({0o600, 0o400})

_WRAP_FORMAT_VERSION = 1
_WRAP_PURPOSE = b"qiao kek wrap v1: data key"
_WRAP_HEADER_SIZE = 1 + 4
_MIN_WRAPPED_SECRET_SIZE = 16
_MAX_KEY_FILE_SIZE = 1024 * 1024
_MAX_KEK_VERSION = 2**32 - 1


class KeyProvider(Protocol):
    """Wraps data keys under a KEK the caller never sees.

    ``wrap`` uses the current KEK; ``unwrap`` accepts anything an earlier
    ``wrap`` produced, including under older KEK versions the provider still
    holds. Both raise :class:`KeyUnavailableError` when they cannot do their job.
    """

    @property
    def kek_id(self) -> str:
        """Names the KEK ``wrap`` uses now; stored beside wrapped keys to spot stale ones."""
        ...

    def wrap(self, dek: bytes) -> bytes:
        """``dek`` encrypted under the current KEK."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The key inside ``wrapped``."""
        ...


@dataclass(frozen=True)
class _KekVersions:
    """Every KEK version a provider holds and the one used for new wraps."""

    keks: Mapping[int, bytes] = field(repr=False)
    current: int


class _SoftwareKeyProvider:
    """A :class:`KeyProvider` holding versioned KEKs in process memory.

    The wrapped form is ``format version (1) | KEK version (4, big-endian) |
    nonce (12) | ciphertext | tag (16)``, sealed with SM4-GCM under associated
    data naming the purpose and the KEK version, so a wrapped key cannot be
    passed off as made by another version or for another use.
    """

    def __init__(self, scheme: str, source: str, versions: _KekVersions) -> None:
        self._scheme = scheme
        self._source = source
        self._versions = versions

    @property
    def kek_id(self) -> str:
        """``<scheme>:v<current version>``, e.g. ``file:v2``."""
        return f"{self._scheme}:v{self._versions.current}"

    def wrap(self, dek: bytes) -> bytes:
        """``dek`` sealed under the current KEK version."""
        if len(dek) < _MIN_WRAPPED_SECRET_SIZE:
            raise ValueError(f"a secret to wrap is at least {_MIN_WRAPPED_SECRET_SIZE} bytes")
        versions = self._versions
        header = bytes([_WRAP_FORMAT_VERSION]) + versions.current.to_bytes(4, "big")
        nonce = os.urandom(NONCE_SIZE)
        sealed = sm4_gcm_encrypt(versions.keks[versions.current], nonce, dek, _wrap_aad(header))
        return header + nonce + sealed

    def unwrap(self, wrapped: bytes) -> bytes:
        """The secret inside ``wrapped``, under whichever KEK version wrapped it."""
        if (
            len(wrapped) < _WRAP_HEADER_SIZE + NONCE_SIZE + _MIN_WRAPPED_SECRET_SIZE + TAG_SIZE
            or wrapped[0] != _WRAP_FORMAT_VERSION
        ):
            raise KeyUnavailableError(
                "the wrapped data key is damaged or in an unknown format; "
                "restore it from a backup of the database"
            )
        header = wrapped[:_WRAP_HEADER_SIZE]
        version = int.from_bytes(header[1:], "big")
        versions = self._versions
        kek = versions.keks.get(version)
        if kek is None:
            held = ", ".join(str(v) for v in sorted(versions.keks))
            raise KeyUnavailableError(
                f"the data key was wrapped with KEK version {version}, which {self._source} "
                f"does not hold (it has {held}); restore version {version} from your key backup"
            )
        nonce = wrapped[_WRAP_HEADER_SIZE : _WRAP_HEADER_SIZE + NONCE_SIZE]
        try:
            return sm4_gcm_decrypt(
                kek, nonce, wrapped[_WRAP_HEADER_SIZE + NONCE_SIZE :], _wrap_aad(header)
            )
        except CryptoIntegrityError:
            raise KeyUnavailableError(
                f"KEK version {version} from {self._source} cannot unwrap this data key: "
                "the KEK is not the one that wrapped it, or the wrapped key was altered"
            ) from None


class FileKeyProvider(_SoftwareKeyProvider):
    """KEKs from a JSON key file owned by this process's user, of mode 0600 or 0400.

    The file is ``{"current": 2, "kek": {"1": "<32 hex digits>", "2": "..."}}``.
    It is read when the provider is made, so a missing, unsafe or corrupt file
    stops start-up rather than the first request. A KEK version added to the
    file later is seen by providers made after it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        super().__init__("file", f"key file {path}", _load_key_file(path)[0])


class EnvKeyProvider(_SoftwareKeyProvider):
    """One KEK (version 1) from ``QIAO_KEK`` as 32 hex digits. Development only.

    Environment variables leak: any process of the same user can read
    ``/proc/<pid>/environ``, and they are copied into crash dumps, child
    processes and support bundles. Use :class:`FileKeyProvider` or an HSM in
    production.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        text = env.get(KEK_ENV_VAR, "").strip()
        if not text:
            raise KeyUnavailableError(
                f"{KEK_ENV_VAR} is not set; set it to 32 hex digits (a 16-byte SM4 key) "
                "for development, or configure a key file"
            )
        kek = _parse_hex_key(text, KEK_ENV_VAR)
        source = f"environment variable {KEK_ENV_VAR}"
        super().__init__("env", source, _KekVersions(keks={1: kek}, current=1))


@dataclass(frozen=True)
class WrappedDataKey:
    """A data key as stored: its id, the KEK that wrapped it, and the wrapped bytes."""

    key_id: str
    kek_id: str
    wrapped: bytes = field(repr=False)


def wrap_data_key(provider: KeyProvider, key: DataKey) -> WrappedDataKey:
    """``key`` wrapped by ``provider`` for storage, its id sealed in with the secret."""
    payload = _key_id_prefix(key.key_id) + key.secret
    return WrappedDataKey(key.key_id, provider.kek_id, provider.wrap(payload))


def unwrap_data_key(
    provider: KeyProvider,
    stored: WrappedDataKey,
    *,
    messages_sealed: int = 0,
    on_seal: Callable[[DataKey], None] | None = None,
) -> DataKey:
    """The :class:`DataKey` inside ``stored``, with its persisted usage count.

    Raises :class:`KeyUnavailableError` when the provider cannot unwrap it, or
    when it was wrapped for another key id (wrapped keys swapped between rows).
    """
    payload = provider.unwrap(stored.wrapped)
    end = 1 + payload[0] if payload else 0
    if not payload or payload[1:end].decode("ascii", errors="replace") != stored.key_id:
        raise KeyUnavailableError(
            f"the wrapped key stored as {stored.key_id!r} was wrapped for another key id; "
            "the key table was altered (restore it from a backup of the database)"
        )
    secret = payload[end:]
    if len(secret) != KEY_SIZE:
        raise KeyUnavailableError(
            f"wrapped key {stored.key_id!r} holds {len(secret)} bytes, not a {KEY_SIZE}-byte "
            "SM4 data key"
        )
    return DataKey(stored.key_id, secret, messages_sealed=messages_sealed, on_seal=on_seal)


def generate_key_file(path: str | os.PathLike[str]) -> None:
    """Create a new key file at ``path`` holding a random KEK version 1.

    The file is created with ``O_CREAT | O_EXCL`` and mode 0600, so an existing
    file (or a symlink planted in its place) is never overwritten and the key
    is never readable by anyone else, not even for a moment.
    """
    path = Path(path)
    versions = _KekVersions(keks={1: os.urandom(KEY_SIZE)}, current=1)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise FileExistsError(f"key file {path} already exists; it was left untouched") from None
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, _render_key_document(versions))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink()
        raise
    os.close(fd)


def add_kek_version(path: str | os.PathLike[str]) -> int:
    """Add a random KEK version to the key file, make it current, and return its number.

    Old versions stay, so data keys wrapped under them still unwrap. The file
    is replaced atomically with the same permission bits. Run one change to a
    key file at a time: two at once may lose one of the new versions.
    """
    path = Path(path)
    versions, mode = _load_key_file(path)
    new_version = max(versions.keks) + 1
    keks = {**versions.keks, new_version: os.urandom(KEY_SIZE)}
    _replace_key_file(path, _KekVersions(keks=keks, current=new_version), mode)
    return new_version


def _load_key_file(path: Path) -> tuple[_KekVersions, int]:
    """The KEK versions in ``path`` and the file's permission bits.

    Every way of being missing, unsafe or broken is a :class:`KeyUnavailableError`
    that names the file; messages never quote the file's contents.
    """
    data, mode = _read_private_file(path)
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyUnavailableError(f"key file {path} is corrupt: it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise KeyUnavailableError(
            f"key file {path} is corrupt: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return _parse_key_document(document, path), mode


def _read_private_file(path: Path) -> tuple[bytes, int]:
    """The contents and permission bits of ``path``, checked on the open descriptor.

    Checking the descriptor rather than the path leaves no gap in which the
    file could be swapped; ``O_NONBLOCK`` keeps a FIFO put in its place from
    hanging start-up.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyUnavailableError(
            f"key file {path} does not exist; restore it from your key backup "
            "(a new key file cannot read data encrypted under the old one)"
        ) from None
    except PermissionError:
        raise KeyUnavailableError(
            f"key file {path} is not readable by this process (uid {os.geteuid()}); "
            "it must be owned by the user Qiao runs as"
        ) from None
    except OSError as exc:
        raise KeyUnavailableError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyUnavailableError(f"key file {path} is not a regular file")
        if info.st_uid != os.geteuid():
            raise InsecureKeyFileError(
                f"key file {path} belongs to uid {info.st_uid}, not to the user Qiao runs as "
                f"(uid {os.geteuid()}), so another user controls it; it is not used until "
                "you give it to this user"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode not in ALLOWED_KEY_FILE_MODES:
            raise InsecureKeyFileError(
                f"key file {path} has mode {mode:04o}, so users other than its owner may "
                f"read or change it; it is not used until you run: chmod 600 {path}"
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(_MAX_KEY_FILE_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_SIZE:
        raise KeyUnavailableError(f"key file {path} is corrupt: it is larger than 1 MiB")
    return data, mode


def _parse_key_document(document: object, path: Path) -> _KekVersions:
    def corrupt(reason: str) -> KeyUnavailableError:
        return KeyUnavailableError(f"key file {path} is corrupt: {reason}")

    if (
        not isinstance(document, dict)
        or set(document) != {"kek", "current"}
        or not isinstance(document["kek"], dict)
    ):
        raise corrupt('expected a JSON object {"current": <version>, "kek": {<version>: <hex>}}')
    current = document["current"]
    if isinstance(current, bool) or not isinstance(current, int):
        raise corrupt('"current" must be a KEK version number')
    keks: dict[int, bytes] = {}
    for name, value in document["kek"].items():
        if not (name.isascii() and name.isdigit()) or not 1 <= int(name) <= _MAX_KEK_VERSION:
            raise corrupt(f"KEK version {name!r} is not a whole number from 1 to 2**32 - 1")
        if not isinstance(value, str):
            raise corrupt(f"KEK version {name} is not a string of 32 hex digits")
        keks[int(name)] = _parse_hex_key(value, f"key file {path} is corrupt: KEK version {name}")
    if not keks:
        raise corrupt("it holds no KEK")
    if current not in keks:
        raise corrupt(f'"current" names KEK version {current}, which the file does not hold')
    return _KekVersions(keks=keks, current=current)


def _parse_hex_key(text: str, what: str) -> bytes:
    """16 key bytes from 32 hex digits; ``what`` names the setting in the error message."""
    rule = f"{what} must be {KEY_SIZE * 2} hex digits (a {KEY_SIZE}-byte SM4 key)"
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyUnavailableError(f"{rule}; it holds other characters") from None
    if len(key) != KEY_SIZE:
        raise KeyUnavailableError(f"{rule}; it holds {len(key) * 2}")
    return key


def _render_key_document(versions: _KekVersions) -> bytes:
    document = {
        "current": versions.current,
        "kek": {str(v): versions.keks[v].hex() for v in sorted(versions.keks)},
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _replace_key_file(path: Path, versions: _KekVersions, mode: int) -> None:
    """Write ``versions`` to ``path`` atomically with permission bits ``mode``.

    A reader sees either the old file or the new one, never a half-written
    key; the new file is private from its first byte.
    """
    temp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, _render_key_document(versions))
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink()
        raise
    os.close(fd)
    try:
        temp.replace(path)
    except BaseException:
        temp.unlink()
        raise
    _fsync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: the directory entry lives in the directory's own blocks."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wrap_aad(header: bytes) -> bytes:
    return _WRAP_PURPOSE + header


def _key_id_prefix(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes([len(encoded)]) + encoded
