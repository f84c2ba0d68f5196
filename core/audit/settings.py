"""The ``[audit]`` table of qiao.toml: where the audit key is, how long entries stay.

The key that chains the audit log must not live in the database it protects:
whoever can write the table could otherwise recompute every MAC. It is a Qiao
key file (docs/crypto.md), named by ``key_file`` or ``QIAO_AUDIT_KEY_FILE``;
for development only, ``QIAO_KEK`` in the environment serves instead. Keeping
this key file on another medium than the main key file separates the duty of
guarding the audit trail from that of running the deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qiao.core.crypto.keys import KEK_ENV_VAR, EnvKeyProvider, FileKeyProvider, KeyProvider
from qiao.core.errors import ConfigurationError

KEY_FILE_ENV = "QIAO_AUDIT_KEY_FILE"
#: GB/T 39786 and most regulators expect at least six months of audit records.
MIN_RETENTION_DAYS = 180


@dataclass(frozen=True)
class AuditSettings:
    """How a deployment keeps its audit log."""

    key_file: Path | None = None
    #: Entries younger than this are never pruned.
    retention_days: int = MIN_RETENTION_DAYS
    #: A checkpoint is stored after every this many entries (and on demand).
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        if self.retention_days < MIN_RETENTION_DAYS:
            raise ConfigurationError(
                f"[audit] retention_days is {self.retention_days}; audit entries are kept "
                f"at least {MIN_RETENTION_DAYS} days"
            )
        if self.checkpoint_every < 1:
            raise ConfigurationError("[audit] checkpoint_every must be at least 1")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], root: Path) -> AuditSettings:
        """Settings from qiao.toml's ``[audit]``; a relative key file is in the deployment."""
        unknown = set(table) - {"key_file", "retention_days", "checkpoint_every"}
        if unknown:
            raise ConfigurationError(f"[audit] has unknown settings: {', '.join(sorted(unknown))}")
        key_file = table.get("key_file")
        return cls(
            key_file=(root / str(key_file)).resolve() if key_file else None,
            retention_days=int(table.get("retention_days", cls.retention_days)),
            checkpoint_every=int(table.get("checkpoint_every", cls.checkpoint_every)),
        )

    def key_provider(self, env: Mapping[str, str] | None = None) -> KeyProvider | None:
        """The provider that wraps the audit key, or None when none is configured.

        A configured but missing or unsafe key file raises, naming the file.
        """
        env = os.environ if env is None else env
        if self.key_file is not None:
            return FileKeyProvider(self.key_file)
        if env.get(KEK_ENV_VAR):
            return EnvKeyProvider(env)
        return None
