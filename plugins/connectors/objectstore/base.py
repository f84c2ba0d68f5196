"""What both object stores share: the interface, key rules, and the encryption hook.

Encryption is injected as a pair of functions (SM4-GCM from Qiao's key service, in
practice) bound to the object key as associated data, so a sealed object copied under
another key does not decrypt. A store with encryption cannot hand out the vendor's
presigned links (they would serve ciphertext); its links point at the host instead,
signed by :class:`~.links.LinkSigner`, where the object is decrypted on the way out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from qiao.plugins.connectors.common.errors import ConnectorError

MAX_LINK_SECONDS = 7 * 24 * 3600
"""SigV4 presigned URLs live at most seven days; local links follow the same rule."""

_KEY = re.compile(r"[A-Za-z0-9._\-/]+")


class CorruptObjectError(ConnectorError):
    """A stored object failed its integrity check (tampered, truncated or moved)."""


@dataclass(frozen=True)
class Encryption:
    """``encrypt(plaintext, key)`` and ``decrypt(sealed, key)``; ``integrity_errors`` are
    what ``decrypt`` raises for a ciphertext that does not verify."""

    encrypt: Callable[[bytes, bytes], bytes]
    decrypt: Callable[[bytes, bytes], bytes]
    integrity_errors: tuple[type[Exception], ...] = (ValueError,)

    def open(self, vendor: str, data: bytes, key: str) -> bytes:
        try:
            return self.decrypt(data, key.encode())
        except self.integrity_errors:
            raise CorruptObjectError(vendor, f"object {key!r} failed its integrity check") from None


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    content_type: str
    encrypted: bool


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def link(self, key: str, expires_in: int, filename: str | None = None) -> str:
        """A URL that downloads the object until ``expires_in`` seconds from now."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe relative object name (no ``..``, no leading ``/``)."""
    parts = key.split("/")
    if (
        not key
        or not _KEY.fullmatch(key)
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(f"{key!r} is not a valid object key (letters, digits, . _ - /)")
    if len(key) > 1024:
        raise ValueError("object keys are at most 1024 characters")
    return key


def check_lifetime(expires_in: int) -> int:
    if not 0 < expires_in <= MAX_LINK_SECONDS:
        raise ValueError(f"a link lives 1 s to {MAX_LINK_SECONDS} s")
    return expires_in


def describe(key: str, data: bytes, content_type: str, encrypted: bool) -> StoredObject:
    return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type, encrypted)
