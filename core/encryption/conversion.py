"""Sealing the stored values of a field that became encrypted: ``qiao keys encrypt-field``.

After :meth:`~qiao.core.customisation.changes.MetadataChanges.encrypt_field` the
field's new values are sealed by every process, and its old ones are still
plaintext (read as they are, core/encryption/declared.py). :func:`encrypt_values`
seals them and writes their blind indexes in batches, each its own short
transaction, while the deployment keeps serving. A row is rewritten only if its
value is unchanged since it was read, so a concurrent update is never lost, and
a value already sealed is left alone: after a crash, run it again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, String, and_, cast, func, select, update

from qiao.core.catalog import Catalog
from qiao.core.crypto import is_sealed
from qiao.core.encryption.fields import FieldEncryption, index_column
from qiao.core.encryption.rotation import BATCH, _batches
from qiao.core.errors import BadUserInput

Progress = Callable[[int, int], None]


def encrypt_values(
    encryption: FieldEncryption,
    catalog: Catalog,
    entity_name: str,
    field_name: str,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> int:
    """Seal every plaintext value of ``entity_name.field_name``; returns how many."""
    entity = catalog.registry.entities[entity_name]
    field = entity.field(field_name)
    if field is None or not field.encrypted:
        raise BadUserInput(f"{entity_name}.{field_name} is not an encrypted field")
    table = catalog.table(entity_name)
    db = encryption.keys.db
    with db.read() as conn:
        newest = func.max(cast(table.c.id, String))  # PostgreSQL has no max(uuid)
        total, upto = conn.execute(select(func.count(), newest)).one()
    sealed = seen = 0
    for ids in _batches(db.read, table, batch, upto) if upto is not None else ():
        with db.write() as conn:
            sealed += _seal_batch(encryption, conn, entity, field, table, ids)
        seen += len(ids)
        if progress is not None:
            progress(seen, total)
    return sealed


def _seal_batch(encryption: FieldEncryption, conn: Connection, entity, field, table, ids) -> int:
    column = table.c[field.column]
    stmt = select(table.c.id, column).where(table.c.id.in_(ids), column.is_not(None))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    changed = 0
    for record_id, value in conn.execute(stmt).all():
        if is_sealed(value):
            continue
        values = encryption.seal(conn, entity, record_id, {field.column: value})
        result = conn.execute(
            update(table).where(and_(table.c.id == record_id, column == value)).values(values)
        )
        changed += result.rowcount
    return changed


def plaintext_left(
    encryption: FieldEncryption, catalog: Catalog, entity_name: str, field_name: str
) -> int:
    """How many stored values of the field are not sealed yet (or lack their blind index)."""
    entity = catalog.registry.entities[entity_name]
    field = entity.field(field_name)
    assert field is not None
    table = catalog.table(entity_name)
    column = table.c[field.column]
    with encryption.keys.db.read() as conn:
        rows = conn.execute(
            select(column, table.c[index_column(field)]).where(column.is_not(None))
        ).all()
    return sum(1 for value, index in rows if not is_sealed(value) or index is None)
