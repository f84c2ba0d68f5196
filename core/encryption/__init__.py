"""Encrypted fields: SM4-GCM sealing in the records service, keys, rotation, backups.

* :mod:`.settings` reads the deployment's key provider (``[keys]`` in qiao.toml).
* :mod:`.keystore` keeps the data keys and blind-index keys, wrapped by the KEK,
  in ``qiao_data_key`` and counts each data key's use.
* :mod:`.fields` seals and opens field values and computes blind indexes.
* :mod:`.rotation` re-seals stored values under new data keys.
* :mod:`.backup` writes and restores encrypted backups.

The primitives come from :mod:`qiao.core.crypto`; docs/encryption.md describes
the whole.
"""

from qiao.core.encryption.fields import (
    FieldEncryption,
    check_keys,
    encrypted_fields,
    index_column,
)
from qiao.core.encryption.keystore import KeyInfo, KeyStore
from qiao.core.encryption.settings import KeySettings, provider_factory

__all__ = [
    "FieldEncryption",
    "KeyInfo",
    "KeySettings",
    "KeyStore",
    "check_keys",
    "encrypted_fields",
    "index_column",
    "provider_factory",
]
