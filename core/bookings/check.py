"""Checking one write against the bookings of its entity.

The order matters for correctness under concurrency: first a lock on the key
(a transaction-scoped advisory lock on PostgreSQL; SQLite's write transactions
are serial already), then the search for an overlapping record, then the
write, all in one transaction. A second booking of the same key waits for the
first to commit and then sees it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, not_, or_, select

from qiao.core.bookings.declaration import BookingDecl
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput, ConfigurationError, Conflict
from qiao.core.formula import Formula, Kind, check, compile_formula, evaluate
from qiao.core.formula.errors import FormulaError
from qiao.core.formula.metadata import entity_resolver
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType

TIME_TYPES = {FieldType.DATE, FieldType.DATETIME}


@dataclass(frozen=True)
class Booking:
    """A declaration checked against the metadata."""

    decl: BookingDecl
    key: FieldDef
    start: FieldDef
    end: FieldDef
    ignore_when: Formula | None

    @classmethod
    def of(cls, catalog: Catalog, decl: BookingDecl) -> Booking:
        """Check ``decl``; ConfigurationError says what does not fit."""
        where = f"booking of {decl.entity} by {decl.key}"
        entity = catalog.registry.entities.get(decl.entity)
        if entity is None:
            raise ConfigurationError(f"{where}: unknown entity {decl.entity!r}")
        fields = {}
        for role in ("key", "start", "end"):
            name = getattr(decl, role)
            found = entity.field(name)
            if found is None or found.computed:
                raise ConfigurationError(f"{where}: {decl.entity} has no stored field {name!r}")
            fields[role] = found
        if fields["start"].type not in TIME_TYPES or fields["end"].type != fields["start"].type:
            raise ConfigurationError(
                f"{where}: start and end are both date or both datetime fields"
            )
        if fields["key"].type is FieldType.JSON or fields["key"].encrypted:
            raise ConfigurationError(f"{where}: the key cannot be a json or encrypted field")
        formula = None
        if decl.ignore_when is not None:
            try:
                formula = check(
                    decl.ignore_when,
                    entity_resolver(catalog.registry.entities, decl.entity),
                    expect=Kind.BOOLEAN,
                )
            except FormulaError as exc:
                raise ConfigurationError(f"{where}: ignore_when: {exc.message}") from None
            if any("." in path for path in formula.fields):
                raise ConfigurationError(f"{where}: ignore_when reads the entity's own fields only")
        return cls(decl, fields["key"], fields["start"], fields["end"], formula)

    def enforce(
        self,
        conn: Connection,
        catalog: Catalog,
        entity: EntityDef,
        record: dict[str, Any],
        moving: Collection[str] = (),
    ) -> None:
        """Refuse ``record`` (field name -> value) if it overlaps another booking of its key;
        the stored rows of ``moving`` (the record itself, a batch's records) do not count.
        The overlapping rows of one key are few, so they are read and ``moving`` is
        left out here rather than sent with the query."""
        key, start, end = (record.get(f.name) for f in (self.key, self.start, self.end))
        if key is None or start is None or end is None:
            return
        if end < start:
            raise BadUserInput(
                f"{entity.name}.{self.end.name} is before {self.start.name}", field=self.end.name
            )
        if self.ignored(record):
            return
        _lock(conn, self.decl, str(key))
        table = catalog.table(entity.name)
        c = table.c
        conditions: list[ColumnElement[bool]] = [
            c[self.key.column] == key,
            c[self.start.column] < end,
            c[self.end.column] > start,
        ]
        if self.ignore_when is not None:
            columns = {f.name: c[f.column] for f in entity.stored_fields}
            ignored = compile_formula(self.ignore_when, dialect=conn.dialect.name, columns=columns)
            conditions.append(or_(ignored.is_(None), not_(ignored)))
        overlapping = conn.execute(
            select(table).where(and_(*conditions)).order_by(c[self.start.column])
        ).all()
        other = next((row._mapping for row in overlapping if str(row.id) not in moving), None)
        if other is None:
            return
        name = ""
        if entity.display_field:
            shown = entity.field(entity.display_field)
            if shown is not None and not shown.computed and not shown.encrypted:
                name = f" {other[shown.column]}"
        message = self.decl.message or f"{self.key.name} is booked at that time"
        raise Conflict(
            f"{message}: it overlaps {entity.name}{name} ({other['id']}) from "
            f"{_shown(other[self.start.column])} to {_shown(other[self.end.column])}",
            field=self.start.name,
            conflictsWith=other["id"],
        )

    def refuse_overlaps_among(self, entity: EntityDef, records: Sequence[dict[str, Any]]) -> None:
        """Refuse a batch two of whose records (field name -> value) book one key at
        overlapping times.

        :meth:`enforce` compares each record with the stored ones; the rows of a
        batch are all checked before any is written, so they cannot see each other
        there.
        """
        taken: dict[Any, list[tuple[Any, Any]]] = {}
        for record in records:
            key, start, end = (record.get(f.name) for f in (self.key, self.start, self.end))
            if key is None or start is None or end is None or self.ignored(record):
                continue
            for other_start, other_end in taken.get(key, ()):
                if other_start < end and other_end > start:
                    message = self.decl.message or f"{self.key.name} is booked at that time"
                    raise Conflict(
                        f"{message}: it overlaps another row of this batch, from "
                        f"{_shown(other_start)} to {_shown(other_end)}",
                        field=self.start.name,
                    )
            taken.setdefault(key, []).append((start, end))

    def ignored(self, record: dict[str, Any]) -> bool:
        if self.ignore_when is None:
            return False
        values = {path: record.get(path) for path in self.ignore_when.fields}
        return evaluate(self.ignore_when, values) is True


def _lock(conn: Connection, decl: BookingDecl, key: str) -> None:
    """Hold the key until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"qiao-booking:{decl.entity}:{decl.key}:{key}".encode()).digest()
    conn.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))


def _shown(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
