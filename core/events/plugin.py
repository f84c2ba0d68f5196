"""The built-in ``events`` plugin: every record change writes its event to the outbox.

It is an ordinary ``qiao_after_record_write`` implementation (and its batch
form, ``qiao_after_records_write``: one statement for a batch), always enabled
(``BUILTIN_PLUGINS``), so the event commits or rolls back with the change that
caused it and no writer can skip it.
"""

from __future__ import annotations

from typing import Any

from qiao.core.events import outbox
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext


@hookimpl
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    outbox.record_change(context, entity, operation, record["id"], changes)


@hookimpl
def qiao_after_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    records: list[dict[str, Any]],
    changes: list[dict[str, tuple[Any, Any]]],
) -> None:
    written = [(r["id"], c) for r, c in zip(records, changes, strict=True)]
    outbox.record_changes(context, entity, operation, written)
