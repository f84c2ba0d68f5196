"""HMAC-SM3 and blind indexes for exact search on sealed fields.

A sealed field cannot be searched: its random nonce makes equal values seal
differently. A blind index stores beside it a keyed SM3-HMAC of the value, so
an exact-match search compares indexes without decrypting anything, and
without the index key nobody can test guesses against the stored indexes.

Values are normalised first so that what a person considers the same value
indexes the same: full-width digits typed with a Chinese input method equal
their half-width form, an e-mail address matches in any case, and a phone
number matches whether written ``138 0013 8000``, ``+86 138…`` or ``0086 138…``.
Use a separate index key per field (or at least per entity), so that equal
values in different fields cannot be linked through their indexes.

SM3 (GB/T 32905-2016) itself comes from the ``cryptography`` package.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal

from cryptography.hazmat.primitives import hashes, hmac

from qiao.core.normalise import normalise_phone

MIN_INDEX_KEY_SIZE = 16

IndexKind = Literal["text", "email", "phone"]


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """The 32-byte HMAC-SM3 of ``data`` under ``key``."""
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def _normalise_text(value: str) -> str:
    """NFKC (full-width to half-width, compatibility forms folded), then strip."""
    return unicodedata.normalize("NFKC", value).strip()


def _normalise_email(value: str) -> str:
    """:func:`_normalise_text`, lower-cased: addresses are matched case-insensitively."""
    return _normalise_text(value).lower()


_NORMALISERS: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {"text": _normalise_text, "email": _normalise_email, "phone": normalise_phone}
)


def normalised(value: str, kind: IndexKind = "text") -> str:
    """``value`` as :func:`blind_index` sees it: equal blind indexes mean equal forms.

    A blind-index hit is confirmed by comparing the opened value's form with the
    sought value's, so a forged or colliding index never returns a row.
    """
    try:
        normalise = _NORMALISERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown blind-index kind {kind!r}; use one of {list(_NORMALISERS)}"
        ) from None
    return normalise(value)


def blind_index(key: bytes, value: str, kind: IndexKind = "text") -> str:
    """The blind index of ``value``: hex HMAC-SM3 of its normalised form.

    ``text`` is NFKC-normalised and stripped (full-width to half-width, case
    kept); ``email`` is that, lower-cased; ``phone`` is E.164, Chinese unless
    it has a country code, and ValueError if it is not a valid number. The
    kind is part of the HMAC input, so the same characters indexed as text and
    as an e-mail address do not collide.
    """
    if len(key) < MIN_INDEX_KEY_SIZE:
        raise ValueError(f"a blind-index key is at least {MIN_INDEX_KEY_SIZE} bytes")
    message = kind.encode("ascii") + b"\x00" + normalised(value, kind).encode("utf-8")
    return hmac_sm3(key, message).hex()
