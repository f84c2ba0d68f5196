"""The audit log: every change, append-only, chained by a keyed HMAC-SM3.

* :mod:`.chain` defines what each MAC covers, and signed checkpoints.
* :mod:`.anchor` keeps checkpoints outside the database, in an append-only file.
* :mod:`.log` appends entries inside the transaction of the change, stores
  checkpoints and prunes old entries; :func:`record` and :func:`record_login`
  are for changes that do not pass through the records service.
* :mod:`.verify` walks the chain and names the first entry that does not verify.
* :mod:`.trail` reads one record's history; :mod:`.graphql` serves it.
* :mod:`.plugin` is the built-in ``audit`` plugin that records every write.

docs/audit.md describes the format, the key and the guarantees.
"""

from qiao.core.audit.chain import Checkpoint, Entry
from qiao.core.audit.log import (
    AuditEvent,
    AuditLog,
    Pruned,
    bind,
    bound,
    checkpoint_if_due,
    has_key,
    initialize,
    is_encrypted,
    log_for,
    record,
    record_login,
)
from qiao.core.audit.trail import can_read_trail
from qiao.core.audit.verify import Problem, Report
from qiao.core.config.audit import AuditSettings

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditSettings",
    "Checkpoint",
    "Entry",
    "Problem",
    "Pruned",
    "Report",
    "bind",
    "bound",
    "can_read_trail",
    "checkpoint_if_due",
    "has_key",
    "initialize",
    "is_encrypted",
    "log_for",
    "record",
    "record_login",
]
