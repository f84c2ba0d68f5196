"""The built-in ``bookings`` plugin: refuses overlapping bookings on every write.

Always enabled (``BUILTIN_PLUGINS``). Declarations come from the enabled
plugins' manifests and are checked against the metadata at start-up and
whenever the metadata changes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from qiao.core.bookings.check import Booking
from qiao.core.bookings.declaration import SECTION, BookingDecl
from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import by_entity
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext
from qiao.core.records.host import RecordsHost
from qiao.core.runtime import Runtime

_STATE = "bookings:declarations"


def declarations(runtime: RecordsHost) -> dict[str, list[BookingDecl]]:
    """Every declared booking constraint of the runtime's plugins, by entity (read once)."""

    def read(rt: Runtime) -> dict[str, list[BookingDecl]]:
        return by_entity(
            d for _, manifest in rt.plugins.manifests() for d in manifest.section(SECTION)
        )

    return runtime.state(_STATE, read)


def bookings(catalog: Catalog, decls: list[BookingDecl]) -> list[Booking]:
    """The declarations checked against ``catalog`` (ConfigurationError when one does not fit)."""
    return [Booking.of(catalog, decl) for decl in decls]


@hookimpl
def qiao_startup(runtime: Runtime) -> None:
    try:
        catalog = runtime.current()
    except ConfigurationError:  # no tables yet: 'qiao migrate' runs before any record
        return
    for decls in declarations(runtime).values():
        bookings(catalog, decls)


@hookimpl
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    decls = declarations(context.runtime).get(entity.name)
    if not decls or operation == "delete":
        return
    moving = {str(existing["id"])} if existing else set()
    record = _as_written(entity, values, existing)
    checks = bookings(context.catalog, decls)
    _enforce(context, entity, operation, values, record, checks, moving)


def _enforce(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    record: dict[str, Any],
    checks: list[Booking],
    moving: Collection[str],
) -> None:
    """Refuse a row (``values``, leaving ``record``) overlapping a stored booking other than
    those ``moving`` (the record itself, and in a batch every record the batch moves:
    those meet this row where the batch puts them, compared among themselves)."""
    for booking in checks:
        if operation == "update":
            watched = {booking.key.name, booking.start.name, booking.end.name}
            if booking.ignore_when is not None:
                watched |= set(booking.ignore_when.fields)
            if not watched & set(values):
                continue
        booking.enforce(context.connection, context.catalog, entity, record, moving)


@hookimpl
def qiao_before_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: list[dict[str, Any]],
    existing: list[dict[str, Any] | None],
) -> None:
    """:func:`qiao_before_record_write` row by row, for an entity that declares bookings
    (looked up once for the batch); then the rows against each other."""
    decls = declarations(context.runtime).get(entity.name)
    if not decls or operation == "delete":
        return
    moving = {str(stored["id"]) for stored in existing if stored is not None}
    checks = bookings(context.catalog, decls)
    written = [
        _as_written(entity, row, stored) for row, stored in zip(values, existing, strict=True)
    ]
    for row, record in zip(values, written, strict=True):
        _enforce(context, entity, operation, row, record, checks, moving)
    for booking in checks:
        booking.refuse_overlaps_among(entity, written)


def _as_written(
    entity: EntityDef, values: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """The record as the write leaves it, by field name: ``values`` over what is stored."""
    return {
        f.name: values[f.name] if f.name in values else (existing or {}).get(f.column)
        for f in entity.stored_fields
    }
