"""Encryption at rest with the Chinese GM algorithms (SM4-GCM, SM3).

The pieces, each in its own module:

* :mod:`.sm4gcm` seals field values (bound to entity, field and record id) and
  backup streams under data keys, and counts each data key's use.
* :mod:`.sm3` computes HMAC-SM3 and blind indexes, so sealed fields can still
  be searched for an exact value.
* :mod:`.keys` wraps data keys under versioned key-encryption keys held by a
  :class:`KeyProvider` (a key file, or the environment for development).
* :mod:`.errors` holds the exceptions, each with a message a person can act on.

The formats, key hierarchy and nonce policy are described in docs/crypto.md.
"""

from qiao.core.crypto.errors import (
    CryptoError,
    CryptoIntegrityError,
    DataKeyExhaustedError,
    InsecureKeyFileError,
    KeyUnavailableError,
)
from qiao.core.crypto.keys import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    WrappedDataKey,
    add_kek_version,
    generate_key_file,
    unwrap_data_key,
    wrap_data_key,
)
from qiao.core.crypto.sm3 import IndexKind, blind_index, hmac_sm3, normalised
from qiao.core.crypto.sm4gcm import (
    DataKey,
    FieldContext,
    KeyLookup,
    Keyring,
    decrypt_stream,
    encrypt_stream,
    is_sealed,
    open_column,
    open_field,
    open_text,
    seal_field,
    seal_text,
    sealed_key_id,
)

__all__ = [
    "CryptoError",
    "CryptoIntegrityError",
    "DataKey",
    "DataKeyExhaustedError",
    "EnvKeyProvider",
    "FieldContext",
    "FileKeyProvider",
    "IndexKind",
    "InsecureKeyFileError",
    "KeyLookup",
    "KeyProvider",
    "KeyUnavailableError",
    "Keyring",
    "WrappedDataKey",
    "add_kek_version",
    "blind_index",
    "decrypt_stream",
    "encrypt_stream",
    "generate_key_file",
    "hmac_sm3",
    "is_sealed",
    "normalised",
    "open_column",
    "open_field",
    "open_text",
    "seal_field",
    "seal_text",
    "sealed_key_id",
    "unwrap_data_key",
    "wrap_data_key",
]
