"""The ``[audit]`` table of qiao.toml: where the audit key is, how long entries stay,
how often the chain is checkpointed and where checkpoints are kept outside the database.

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
#: The checkpoint file's name in the deployment folder, unless ``checkpoint_file`` names another.
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
_SETTINGS = {
    "key_file",
    "retention_days",
    "checkpoint_every",
    "checkpoint_minutes",
    "checkpoint_file",
}
#: GB/T 39786 and most regulators expect at least six months of audit records.
MIN_RETENTION_DAYS = 180


@dataclass(frozen=True)
class AuditSettings:
    """How a deployment keeps its audit log."""

    key_file: Path | None = None
    #: Entries younger than this are never pruned.
    retention_days: int = MIN_RETENTION_DAYS
    #: A checkpoint is stored after every this many entries (and on demand).
    checkpoint_every: int = 100
    #: ... and at the first entry, or by the server when idle, this many minutes after the last.
    checkpoint_minutes: float = 10.0
    #: Where checkpoints are also appended, outside the database (None: nowhere).
    checkpoint_file: Path | None = None

    def __post_init__(self) -> None:
        if self.retention_days < MIN_RETENTION_DAYS:
            raise ConfigurationError(
                f"[audit] retention_days is {self.retention_days}; audit entries are kept "
                f"at least {MIN_RETENTION_DAYS} days"
            )
        if self.checkpoint_every < 1:
            raise ConfigurationError("[audit] checkpoint_every must be at least 1")
        if self.checkpoint_minutes <= 0:
            raise ConfigurationError("[audit] checkpoint_minutes must be more than 0")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], root: Path) -> AuditSettings:
        """Settings from qiao.toml's ``[audit]``; relative files are in the deployment.

        A deployment keeps its checkpoints in :data:`CHECKPOINT_FILE` unless
        ``checkpoint_file`` names another file.
        """
        unknown = set(table) - _SETTINGS
        if unknown:
            raise ConfigurationError(f"[audit] has unknown settings: {', '.join(sorted(unknown))}")
        key_file = table.get("key_file")
        return cls(
            key_file=(root / str(key_file)).resolve() if key_file else None,
            retention_days=int(table.get("retention_days", cls.retention_days)),
            checkpoint_every=int(table.get("checkpoint_every", cls.checkpoint_every)),
            checkpoint_minutes=float(table.get("checkpoint_minutes", cls.checkpoint_minutes)),
            checkpoint_file=(root / str(table.get("checkpoint_file", CHECKPOINT_FILE))).resolve(),
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
