"""The built-in ``audit`` plugin: every record write enters the audit log.

Always enabled (``BUILTIN_PLUGINS``), and wired through the same hooks any
plugin uses: the write hook appends an entry inside the write's transaction
(the runtime binds its audit key before it writes), and ``auditTrail`` joins
the schema. A batch (``qiao_after_records_write``) appends its entries under
one acquisition of the head lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qiao.core.audit import log
from qiao.core.events import livewake
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext
from qiao.core.runtime import register_audit_logs

# Every runtime binds its audit log through this package before it writes.
register_audit_logs(log)


@hookimpl
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: Mapping[str, Any],
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    qiao_after_records_write(context, entity, operation, [record], [changes])


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.audit.graphql import AuditQuery

    return [AuditQuery]


@hookimpl
def qiao_after_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    records: list[Mapping[str, Any]],
    changes: list[Mapping[str, tuple[Any, Any]]],
) -> None:
    audit = context.runtime.audit_log()
    if audit is None:
        log.refuse_if_keyed(context.connection)
        return
    audit.record_writes(context, entity, operation, records, changes)
    livewake.announce(context.connection)  # the entries are the subscriptions' feed
