"""Which columns an export has for its caller, their headers, and each cell's value.

A field the caller may not read is left out of the columns altogether (not
shown empty), so a file says nothing about it; so is a formula or rollup
computed from such a field or from a masked one, as in GraphQL. Masked and
encrypted fields need nothing here: the records service hands them over
masked, or opened for callers who may read them. Headers are the fields' labels (the Chinese label
where the manifest has one), or with ``names="api"`` the names a GraphQL
client uses (``annualRevenue``, ``accountId``), which is also how enum values
are then written: as stored rather than by their labels.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.metadata.registry import camel
from qiao.core.permissions.access import Access
from qiao.core.permissions.rights import FieldAccess

#: What an exported cell holds: text, a number, a truth value, a date or a wall-clock time.
Cell = str | int | decimal.Decimal | bool | dt.date | dt.datetime | None
#: The system columns an export shows, with their labels, around the declared fields.
_LEADING = {"id": "ID"}
_TRAILING = {"created_at": "创建时间", "updated_at": "更新时间"}


class Names(StrEnum):
    """How headers (and enum values) are written."""

    LABELS = "labels"
    API = "api"


@dataclass(frozen=True)
class Column:
    """One column: the record key it reads, its header, and its field (None: system)."""

    key: str
    header: str
    field: FieldDef | None


def columns_for(entity: EntityDef, access: Access, names: Names) -> list[Column]:
    """The columns ``access`` may read, in the manifest's order between id and timestamps."""
    api = names is Names.API
    found = [Column(k, camel(k) if api else label, None) for k, label in _LEADING.items()]
    for f in entity.fields:
        if f.write_only or access.field_access(entity.name, f.name) is FieldAccess.NONE:
            continue
        if access.unclear_source(entity.name, f.name) is not None:
            continue
        found.append(Column(f.column, camel(f.column) if api else f.label.text("zh-CN"), f))
    found += [Column(k, camel(k) if api else label, None) for k, label in _TRAILING.items()]
    return found


def cells(
    columns: list[Column], record: Mapping[str, Any], names: Names, zone: dt.tzinfo
) -> list[Cell]:
    """A record's row: instants on the deployment's wall clock (spreadsheets know no zones)."""
    return [_cell(c.field, record.get(c.key), names, zone) for c in columns]


def _cell(field: FieldDef | None, value: Any, names: Names, zone: dt.tzinfo) -> Cell:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).replace(tzinfo=None)
    if field is not None and field.type is FieldType.ENUM and names is Names.LABELS:
        option = next((v for v in field.values if v.value == value), None)
        return option.label.text("zh-CN") if option and option.label else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str | int | decimal.Decimal | bool | dt.date):
        return value
    return str(value)
