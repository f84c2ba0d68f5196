"""The errors of :mod:`qiao.core.crypto`.

The cryptography library reports a failed check as a bare ``InvalidTag`` with no
message; these exceptions say instead which value, stream or key failed and what
a person can do about it. They deliberately do not derive from
:class:`qiao.core.errors.QiaoError`: their messages name key files and key ids,
which belong in the operator's log, not in an API response.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by :mod:`qiao.core.crypto`."""


class CryptoIntegrityError(CryptoError):
    """A sealed value or stream is malformed, altered, truncated or was moved.

    Moving covers a ciphertext copied to another record or field: the
    associated data no longer matches, so it is refused like any tampering.
    """


class KeyUnavailableError(CryptoError):
    """A key needed for the operation is missing, unreadable or wrong."""


class InsecureKeyFileError(KeyUnavailableError):
    """A key file is readable by users other than its owner, so it is not used."""


class DataKeyExhaustedError(CryptoError):
    """A data key has sealed as many messages as its nonce policy allows."""
