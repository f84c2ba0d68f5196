"""Records as a document template sees them: by field name, read as the caller.

A statement needs more than its own record: the client its matter belongs to,
the time entries its total adds up. Templates reach them through ``related``
(a relation path) and ``rows`` (the records behind a rollup field), and every
record they reach is read through the records service as the caller, so row
rules, hidden and masked fields apply as they do to the document's own record.
A mistake in a path is a template error, not a blank in a report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateRuntimeError

from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.metadata.rollup import RollupSpec
from qiao.core.permissions.rights import FieldAccess
from qiao.core.query import MAX_PAGE_SIZE
from qiao.core.records.context import WriteContext
from qiao.core.redaction import REDACTED, Sensitive

ZONE = ZoneInfo("Asia/Shanghai")
#: Rows a document may list: a statement longer than this is a report, not a document.
MAX_ROWS = 2000


class RecordViews:
    """Reads records for one rendering and remembers which entity each one is of."""

    def __init__(self, context: WriteContext) -> None:
        self._context = context
        self._access = context.records.permissions.access_for(context.actor)
        self._entity_of: dict[str, str] = {}

    def values(self, entity_name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` by field name, without the fields the caller may not read."""
        entity = self._context.catalog.entity(entity_name)
        values = {"id": record["id"], "created_at": record.get("created_at")}
        values |= {
            f.name: record.get(f.column, record.get(f.name))
            for f in entity.fields
            if self._access.field_access(entity.name, f.name) is not FieldAccess.NONE
        }
        self._entity_of[str(record["id"])] = entity.name
        return values

    def related(self, path: str, of: Mapping[str, Any]) -> dict[str, Any] | None:
        """The record ``path`` (``matter.client``) leads to from ``of``; None where it ends.

        A relation that is empty, or leads to a record the caller may not read,
        gives None: printing a field of it is then an error naming the template.
        """
        entity = self._entity(of)
        current: Mapping[str, Any] = of
        for step in path.split("."):
            field = entity.field(step)
            if field is None or field.type is not FieldType.RELATION or field.target is None:
                raise TemplateRuntimeError(f"{step!r} is not a relation of {entity.name}")
            if step not in current:
                raise TemplateRuntimeError(f"{entity.name}.{step} is not readable here")
            target_id = current[step]
            if target_id is None:
                return None
            record = self._context.records.get(
                self._context.connection, field.target, str(target_id), actor=self._context.actor
            )
            if record is None:
                return None
            entity = self._context.catalog.entity(field.target)
            current = self.values(entity.name, record)
        return dict(current)

    def rows(
        self, field_name: str, of: Mapping[str, Any], order_by: str | None = None
    ) -> list[dict[str, Any]]:
        """The records the rollup field ``field_name`` of ``of`` counts, that the caller reads.

        The rollup's own link, filter and parent filter select them, so a statement's
        lines are the ones its total adds up; ``order_by`` names a field of theirs.
        """
        parent = self._entity(of)
        field = parent.field(field_name)
        if field is None or field.rollup is None:
            raise TemplateRuntimeError(f"{field_name!r} is not a rollup field of {parent.name}")
        spec = RollupSpec.model_validate(field.rollup)
        child = self._context.catalog.entity(spec.entity)
        link = child.field(spec.link)
        assert link is not None, "rollups are checked when the metadata loads"
        conditions: list[dict[str, Any]] = [
            {link.column: {"eq": self._parent_value(parent, of, spec.via or "id")}}
        ]
        for child_field, compared in (spec.parent_filter or {}).items():
            for op, parent_field in compared.items():
                value = self._parent_value(parent, of, parent_field)
                conditions.append({child_field: {op: value}})
        if spec.filter:
            conditions.append(spec.filter)
        order = [{"field": order_by}] if order_by else None
        return [self.values(child.name, r) for r in self._list(child, conditions, order)]

    def shown(self, of: Mapping[str, Any], field_name: str) -> str:
        """A value of ``of`` as a person reads it: an enum's Chinese label, 是/否, local time."""
        entity = self._entity(of)
        field = entity.field(field_name)
        if field_name not in of or (field is None and field_name not in ("id", "created_at")):
            raise TemplateRuntimeError(f"{entity.name}.{field_name} is not readable here")
        value = of[field_name]
        if value is None:
            return ""
        if isinstance(value, Sensitive):
            return REDACTED
        if field is not None and field.type is FieldType.ENUM:
            label = next((v.label for v in field.values if v.value == value), None)
            return label.text("zh-CN") if label is not None else str(value)
        if isinstance(value, dt.datetime):
            return value.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, Decimal):
            return format(value, "f")
        return str(value)

    def _entity(self, of: Mapping[str, Any]) -> EntityDef:
        name = self._entity_of.get(str(of.get("id"))) if isinstance(of, Mapping) else None
        if name is None:
            raise TemplateRuntimeError("related, rows and shown take a record of this document")
        return self._context.catalog.entity(name)

    def _parent_value(self, parent: EntityDef, of: Mapping[str, Any], name: str) -> Any:
        if name not in of:
            raise TemplateRuntimeError(f"{parent.name}.{name} is not readable here")
        value = of[name]
        return value.isoformat() if isinstance(value, dt.date) else value

    def _list(
        self, child: EntityDef, conditions: list[dict[str, Any]], order: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = self._context.records.list(
                self._context.connection,
                child.name,
                filter={"and": conditions},
                order_by=order,
                first=MAX_PAGE_SIZE,
                after=after,
                actor=self._context.actor,
            )
            records.extend(page.records)
            if len(records) > MAX_ROWS:
                raise TemplateRuntimeError(f"more than {MAX_ROWS} {child.plural} to list")
            if not page.has_next_page:
                return records
            after = page.cursors[-1]
