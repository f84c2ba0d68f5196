"""Online key rotation: new KEK versions, re-sealing rows, retiring old data keys.

* :func:`rotate_kek` adds a KEK version to the key file and re-wraps every
  stored key under it, in one transaction. The old version stays in the file;
  other processes take up the new one within :data:`~.keystore.KEYS_TTL`
  seconds, and unwrap keys re-wrapped under it at once (a failed unwrap is
  retried with the key file read again).
* :func:`rotate_data` gives each entity with encrypted fields a new active data
  key, waits until every process seals with it, and re-seals its rows in
  batches, each batch its own short transaction, while reads and writes go on
  (every key stays readable). Run it again after a
  crash: an entity whose rows still use an older key is finished first, without
  another new key.
* :func:`rotate_index` gives each entity with searchable fields a new
  blind-index key, waits until every process uses it for writes, then
  recomputes the stored indexes in batches. Lookups try every live index key
  meanwhile, so equality filters and de-duplication keep working. Run it again
  after a crash: an entity whose rows still hold older indexes is finished first.
* :func:`key_usage` counts the stored values sealed (or indexed) under each
  key, and :func:`retire` deletes a data or index key only when nothing uses it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, String, and_, cast, func, select, update

from qiao.core.catalog import Catalog
from qiao.core.crypto import FileKeyProvider, add_kek_version, is_sealed, sealed_key_id
from qiao.core.encryption.fields import (
    FieldEncryption,
    encrypted_fields,
    index_column,
    index_version,
)
from qiao.core.encryption.keystore import ACTIVE, DATA, KEYS_TTL, key_name
from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.metadata.model import EntityDef
from qiao.core.storage import system

Progress = Callable[[str, int, int], None]
BATCH = 500


@dataclass(frozen=True)
class Rotated:
    """What :func:`rotate_data` did for one entity."""

    entity: str
    key_id: str
    rows: int


def rotate_kek(encryption: FieldEncryption, key_file: Path) -> tuple[str, int]:
    """Add a KEK version to ``key_file`` and re-wrap every stored key under it."""
    keys = encryption.keys
    old = FileKeyProvider(key_file)
    add_kek_version(key_file)
    new = FileKeyProvider(key_file)
    keys.forget()
    keys.use_provider(new)
    with keys.db.write() as conn:
        count = keys.rewrap(conn, old)
    return new.kek_id, count


def _entities(catalog: Catalog) -> list[EntityDef]:
    return [e for e in catalog.registry.entities.values() if encrypted_fields(e)]


def _batches(conn_factory: Callable[[], Iterator[Connection]], table, size: int, upto: str):
    """Record ids up to ``upto`` in id order, ``size`` at a time, each batch read afresh.

    Rows made after the new key became active are sealed with it already.
    """
    last = None
    while True:
        with conn_factory() as conn:
            stmt = select(table.c.id).where(table.c.id <= upto).order_by(table.c.id).limit(size)
            if last is not None:
                stmt = stmt.where(table.c.id > last)
            ids = [r[0] for r in conn.execute(stmt)]
        if not ids:
            return
        yield ids
        last = ids[-1]


def rotate_data(
    encryption: FieldEncryption,
    catalog: Catalog,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    settle: float = KEYS_TTL,
) -> list[Rotated]:
    """Re-seal every encrypted value under its entity's new active data key.

    ``settle`` is how long other processes may keep sealing with the data keys
    they loaded before the new ones became active; the pass starts after it, so
    the old keys seal nothing the pass has already gone by.
    """
    keys = encryption.keys
    done: list[Rotated] = []
    fresh = False
    for entity in _entities(catalog):
        with keys.db.write() as conn:
            active = keys.active_key(conn, entity.name).key_id
        if not _stale_rows(encryption, catalog, entity, active):
            with keys.db.write() as conn:
                keys.rotate_data_key(conn, entity.name)
            fresh = True
    if fresh and settle > 0:
        time.sleep(settle)
    for entity in _entities(catalog):
        table = catalog.table(entity.name)
        with keys.db.write() as conn:
            active = keys.active_key(conn, entity.name).key_id
        with keys.db.read() as conn:
            newest = func.max(cast(table.c.id, String))  # PostgreSQL has no max(uuid)
            total, upto = conn.execute(select(func.count(), newest)).one()
        rows = 0
        seen = 0
        for ids in _batches(keys.db.read, table, batch, upto) if upto is not None else ():
            with keys.db.write() as conn:
                rows += _reseal(encryption, conn, entity, table, ids)
            seen += len(ids)
            if progress is not None:
                progress(entity.name, seen, total)
        done.append(Rotated(entity.name, keys.active_key_id(entity.name) or active, rows))
    return done


def _stale_rows(
    encryption: FieldEncryption, catalog: Catalog, entity: EntityDef, active: str
) -> bool:
    usage = key_usage(encryption, catalog, entities=[entity], indexes=False)
    return any(k != active for k in usage)


def _reseal(
    encryption: FieldEncryption, conn: Connection, entity: EntityDef, table, ids: list[str]
) -> int:
    """Re-seal the values of ``ids`` not sealed by the active key; returns rows changed."""
    fields = encrypted_fields(entity)
    stmt = select(table.c.id, *(table.c[f.column] for f in fields)).where(table.c.id.in_(ids))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    keys = encryption.keys
    active = keys.active_key(conn, entity.name).key_id
    changed = 0
    for row in conn.execute(stmt).all():
        m = row._mapping
        plain: dict[str, str] = {}
        for f in fields:
            token = m[f.column]
            if token is None or (is_sealed(token) and sealed_key_id(token) == active):
                continue
            if is_sealed(token):
                plain[f.column] = encryption.open_value(entity.name, f.name, m["id"], token)
            else:  # written before the field was encrypted
                plain[f.column] = token
        if not plain:
            continue
        sealed = encryption.seal(conn, entity, m["id"], plain)
        unchanged = [table.c[c] == m[c] for c in plain]
        result = conn.execute(
            update(table).where(and_(table.c.id == m["id"], *unchanged)).values(sealed)
        )
        changed += result.rowcount
    return changed


def key_usage(
    encryption: FieldEncryption,
    catalog: Catalog,
    *,
    entities: list[EntityDef] | None = None,
    indexes: bool = True,
) -> Counter[str]:
    """How many stored values each key seals or indexes (``plaintext`` for unsealed ones).

    ``indexes=False`` counts data keys only.
    """
    usage: Counter[str] = Counter()
    db = encryption.keys.db
    for entity in entities if entities is not None else _entities(catalog):
        table = catalog.table(entity.name)
        fields = encrypted_fields(entity)
        indexed = [index_column(f) for f in fields if f.searchable and indexes]
        columns = [table.c[f.column] for f in fields] + [table.c[c] for c in indexed]
        sealed = len(fields)
        with db.read() as conn:
            for row in conn.execute(select(*columns)):
                for token in row[:sealed]:
                    if token is not None:
                        usage[sealed_key_id(token) if is_sealed(token) else "plaintext"] += 1
                for index in row[sealed:]:
                    if index is not None:
                        usage[_index_key_id(entity.name, index_version(index))] += 1
    return usage


def _index_key_id(entity: str, version: int) -> str:
    return key_name("bik", entity, version) if version > 1 else key_name("bik", entity)


def _searchable(catalog: Catalog) -> list[EntityDef]:
    return [e for e in _entities(catalog) if any(f.searchable for f in encrypted_fields(e))]


def rotate_index(
    encryption: FieldEncryption,
    catalog: Catalog,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    settle: float = KEYS_TTL,
) -> list[Rotated]:
    """Recompute every blind index under its entity's new index key.

    ``settle`` is how long other processes may keep writing with the index keys
    they loaded before the new one became active; the pass starts after it.
    """
    keys = encryption.keys
    done: list[Rotated] = []
    fresh: list[EntityDef] = []
    for entity in _searchable(catalog):
        with keys.db.write() as conn:
            live = keys.index_keys(conn, entity.name)
        if len(live) == 1:
            with keys.db.write() as conn:
                keys.rotate_index_key(conn, entity.name)
            fresh.append(entity)
    if fresh and settle > 0:
        time.sleep(settle)
    for entity in _searchable(catalog):
        table = catalog.table(entity.name)
        with keys.db.read() as conn:
            newest = func.max(cast(table.c.id, String))
            total, upto = conn.execute(select(func.count(), newest)).one()
        rows = 0
        seen = 0
        for ids in _batches(keys.db.read, table, batch, upto) if upto is not None else ():
            with keys.db.write() as conn:
                rows += _reindex(encryption, conn, entity, table, ids)
            seen += len(ids)
            if progress is not None:
                progress(entity.name, seen, total)
        with keys.db.read() as conn:
            active = keys.index_keys(conn, entity.name)[0].key_id
        done.append(Rotated(entity.name, active, rows))
    return done


def _reindex(
    encryption: FieldEncryption, conn: Connection, entity: EntityDef, table, ids: list[str]
) -> int:
    """Recompute the indexes of ``ids`` not made by the active index key; returns rows changed."""
    fields = [f for f in encrypted_fields(entity) if f.searchable]
    columns = [c for f in fields for c in (f.column, index_column(f))]
    stmt = select(table.c.id, *(table.c[c] for c in columns)).where(table.c.id.in_(ids))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    active = encryption.keys.index_keys(conn, entity.name)[0].version
    changed = 0
    for row in conn.execute(stmt).all():
        m = row._mapping
        fresh: dict[str, str] = {}
        for f in fields:
            stored = m[index_column(f)]
            if stored is None or index_version(stored) == active or m[f.column] is None:
                continue
            value = m[f.column]
            if is_sealed(value):
                value = encryption.open_value(entity.name, f.name, m["id"], value)
            fresh[index_column(f)] = encryption.index(conn, entity.name, f, value)
        if not fresh:
            continue
        unchanged = [table.c[c] == m[c] for c in columns]
        result = conn.execute(
            update(table).where(and_(table.c.id == m["id"], *unchanged)).values(fresh)
        )
        changed += result.rowcount
    return changed


def retire(encryption: FieldEncryption, catalog: Catalog, key_id: str) -> None:
    """Delete data key ``key_id`` for good; refused while anything still uses it."""
    keys = encryption.keys
    with keys.db.read() as conn:
        row = conn.execute(
            select(system.data_key).where(system.data_key.c.key_id == key_id)
        ).first()
    if row is None:
        raise BadUserInput(f"there is no key {key_id!r}; 'qiao keys status' lists them")
    option = "--data" if row.purpose == DATA else "--index"
    if row.state == ACTIVE:
        what = "seals" if row.purpose == DATA else "indexes"
        raise BadUserInput(
            f"{key_id} {what} new values of {row.entity}; run 'qiao keys rotate {option}' first"
        )
    used = key_usage(encryption, catalog).get(key_id, 0)
    if used:
        what = "seals" if row.purpose == DATA else "indexes"
        raise BadUserInput(
            f"{key_id} still {what} {used} stored values; run 'qiao keys rotate {option}' to "
            "finish moving them, then retire it"
        )
    with keys.db.write() as conn:
        keys.delete_keys(conn, [key_id])


def kek_versions_in_use(encryption: FieldEncryption) -> set[str]:
    with encryption.keys.db.read() as conn:
        return {r[0] for r in conn.execute(select(system.data_key.c.kek_id).distinct())}


def require_file_provider(key_file: Path | None) -> Path:
    if key_file is None:
        raise ConfigurationError(
            'rotating the KEK needs a key file: [keys] provider = "file" in qiao.toml '
            "(the environment provider holds one fixed KEK, for development)"
        )
    return key_file
