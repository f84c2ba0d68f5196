"""Encrypted backups: a consistent snapshot of Qiao's tables, sealed as a stream.

File format (docs/encryption.md)::

    "QIAOBAK1" | header length (4, big-endian) | header (JSON) | SM4-GCM stream

The header names the dialect and holds a fresh backup data key wrapped by the
deployment's KEK. The stream (:func:`qiao.core.crypto.encrypt_stream`) holds
JSON lines: a preamble with the SHA-256 of the header (so the header cannot be
swapped), then each table's columns and rows in primary-key order, then the row
count and SHA-256 of every table.

Format 2 hashes each row as a JSON object keyed by column name, so a restore
whose tables order their columns otherwise (a run-time field puts its blind
index beside it, a new table puts them last) still verifies. Format 1 hashed
the rows as written, column by column; it is still read: its file is checked
by position, and the restored rows by name. :func:`restore` decrypts everything into a
temporary file and checks all of it before it writes a single row, into an
empty database only, in one transaction; it then recomputes the checksums of
what it wrote and rolls back unless they match.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy import (
    Connection,
    ForeignKeyConstraint,
    MetaData,
    Table,
    bindparam,
    create_engine,
    delete,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import CircularDependencyError
from sqlalchemy.sql.ddl import sort_tables_and_constraints

from qiao.core.crypto import (
    CryptoError,
    CryptoIntegrityError,
    DataKey,
    KeyProvider,
    Keyring,
    WrappedDataKey,
    decrypt_stream,
    encrypt_stream,
    unwrap_data_key,
    wrap_data_key,
)
from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.schema import ddl

MAGIC = b"QIAOBAK1"
#: The format :func:`create` writes; :data:`READABLE` are those :func:`restore` reads.
FORMAT = 2
READABLE = (1, 2)
_MAX_HEADER = 64 * 1024
ALEMBIC_TABLE = "qiao_alembic_version"


@dataclass(frozen=True)
class BackupInfo:
    tables: int
    rows: int
    plaintext_bytes: int


# -- Values as JSON ---------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$n": str(value)}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return {"$j": value}
    return value


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    ((tag, inner),) = value.items()
    match tag:
        case "$b":
            return base64.b64decode(inner)
        case "$t":
            return dt.datetime.fromisoformat(inner)
        case "$d":
            return dt.date.fromisoformat(inner)
        case "$n":
            return decimal.Decimal(inner)
        case "$j":
            return inner
    raise CryptoIntegrityError(f"backup: unknown value tag {tag!r}")


def _line(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# -- Reading tables -----------------------------------------------------------------------------


def _tables(conn: Connection) -> list[Table]:
    metadata = MetaData()
    metadata.reflect(bind=conn)
    return [table for table, _ in _insert_order(metadata) if table is not None]


def _insert_order(
    metadata: MetaData,
) -> list[tuple[Table | None, Collection[ForeignKeyConstraint]]]:
    """Tables parents first, as SQLAlchemy sorts them, without its warning about cycles.

    Tables that refer to each other (a template's ``user.dealer`` to ``account``,
    whose ``owner`` is a user) have no such order. The last entry, ``(None, keys)``,
    holds the nullable keys left out to break those cycles: :func:`_load` fills them
    in once every row is in. A key that must be set is never left out.
    """
    tables = sorted(metadata.tables.values(), key=lambda t: t.key)
    try:
        return sort_tables_and_constraints(tables, filter_fn=_breakable)
    except CircularDependencyError as exc:
        names = ", ".join(sorted(t.name for t in exc.cycles))
        raise BadUserInput(
            f"tables {names} refer to each other through required relations; "
            "their rows cannot be restored one table after another"
        ) from None


def _breakable(constraint: ForeignKeyConstraint) -> bool | None:
    """None (may be left out of the order) for a key whose columns may stay empty a while."""
    return None if all(column.nullable for column in constraint.columns) else False


def _rows(conn: Connection, table: Table) -> Iterator[list[Any]]:
    order = list(table.primary_key.columns) or sorted(table.columns, key=lambda c: c.name)
    stmt = select(table).order_by(*order)
    for row in conn.execute(stmt):
        yield [_encode(v) for v in row]


def _keyed(columns: list[str], row: list[Any]) -> bytes:
    """A row as hashed: a JSON object by column name, whatever the columns' order."""
    return _line(dict(zip(columns, row, strict=True))) + b"\n"


def checksums(conn: Connection) -> dict[str, list[Any]]:
    """Row count and SHA-256 of every table's rows (keyed by column) in primary-key order."""
    out: dict[str, list[Any]] = {}
    for table in _tables(conn):
        digest = hashlib.sha256()
        count = 0
        columns = [c.name for c in table.columns]
        for row in _rows(conn, table):
            digest.update(_keyed(columns, row))
            count += 1
        out[table.name] = [count, digest.hexdigest()]
    return out


def _dump(conn: Connection, out: IO[bytes], header_digest: str) -> tuple[int, int]:
    tables = _tables(conn)
    out.write(_line({"backup": FORMAT, "header_sha256": header_digest}) + b"\n")
    sums: dict[str, list[Any]] = {}
    rows = 0
    for table in tables:
        columns = [c.name for c in table.columns]
        out.write(_line({"table": table.name, "columns": columns}) + b"\n")
        digest = hashlib.sha256()
        count = 0
        for row in _rows(conn, table):
            out.write(_line(row) + b"\n")
            digest.update(_keyed(columns, row))
            count += 1
        sums[table.name] = [count, digest.hexdigest()]
        rows += count
    out.write(_line({"end": sums}) + b"\n")
    return len(tables), rows


@dataclass
class _Snapshot:
    engine: Engine
    isolation: str | None
    cleanup: Path | None


def _snapshot(engine: Engine, workdir: Path) -> _Snapshot:
    """SQLite: a copy made with the online backup API. PostgreSQL: a REPEATABLE READ read."""
    if engine.dialect.name == "sqlite":
        copy = workdir / "snapshot.db"
        raw = engine.raw_connection()
        try:
            target = sqlite3.connect(copy)
            try:
                raw.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        finally:
            raw.close()
        return _Snapshot(create_engine(f"sqlite:///{copy}"), None, copy)
    return _Snapshot(engine, "REPEATABLE READ", None)


def create(engine: Engine, provider: KeyProvider, dst: BinaryIO) -> BackupInfo:
    """Write an encrypted backup of every table in ``engine``'s database to ``dst``."""
    key = DataKey.generate(f"backup-{uuid.uuid4().hex}")
    wrapped = wrap_data_key(provider, key)
    header = _line(
        {
            "format": FORMAT,
            "dialect": engine.dialect.name,
            "key_id": wrapped.key_id,
            "kek_id": wrapped.kek_id,
            "wrapped": base64.b64encode(wrapped.wrapped).decode(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )
    with tempfile.TemporaryDirectory(prefix="qiao-backup-") as work:
        workdir = Path(work)
        snap = _snapshot(engine, workdir)
        plain_path = workdir / "plain"
        fd = os.open(plain_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as plain, snap.engine.connect() as conn:
            if snap.isolation:
                conn = conn.execution_options(isolation_level=snap.isolation)
            with conn.begin():
                if snap.isolation:
                    conn.execute(text("SET TRANSACTION READ ONLY"))
                tables, rows = _dump(conn, plain, hashlib.sha256(header).hexdigest())
        if snap.cleanup is not None:
            snap.engine.dispose()
        dst.write(MAGIC + len(header).to_bytes(4, "big") + header)
        with plain_path.open("rb") as plain:
            size = encrypt_stream(plain, dst, key)
    return BackupInfo(tables, rows, size)


# -- Restoring ---------------------------------------------------------------------------------


@dataclass
class _Checked:
    dialect: str
    tables: dict[str, list[str]]
    sums: dict[str, list[Any]]
    plain: Path


def _read_header(src: BinaryIO) -> tuple[bytes, dict[str, Any]]:
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        raise CryptoIntegrityError("this is not a Qiao backup (wrong magic)")
    size = int.from_bytes(src.read(4), "big")
    if not 0 < size <= _MAX_HEADER:
        raise CryptoIntegrityError("backup header is damaged (impossible length)")
    raw = src.read(size)
    try:
        header = json.loads(raw)
    except ValueError:
        raise CryptoIntegrityError("backup header is damaged (not JSON)") from None
    if not isinstance(header, dict) or not isinstance(header.get("format"), int):
        raise CryptoIntegrityError("backup header is damaged (no format version)")
    if header["format"] not in READABLE:
        raise CryptoIntegrityError(
            f"backup format {header['format']} is unknown to this version of Qiao, which "
            f"reads formats {', '.join(map(str, READABLE))}; restore it with the version "
            "that wrote it"
        )
    return raw, header


def _check(src: BinaryIO, provider: KeyProvider, workdir: Path) -> _Checked:
    """Decrypt and verify the whole backup into ``workdir``; nothing is written elsewhere."""
    raw, header = _read_header(src)
    try:
        stored = WrappedDataKey(
            header["key_id"], header["kek_id"], base64.b64decode(header["wrapped"])
        )
        key = unwrap_data_key(provider, stored)
    except (KeyError, ValueError, TypeError):
        raise CryptoIntegrityError("backup header is damaged (its key)") from None
    plain_path = workdir / "plain"
    fd = os.open(plain_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as plain:
        decrypt_stream(src, plain, Keyring([key]))
    tables: dict[str, list[str]] = {}
    written: dict[str, Any] = {}  # format 1: the lines as written
    keyed: dict[str, Any] = {}  # every format: the rows by column name
    counts: dict[str, int] = {}
    sums: dict[str, list[Any]] | None = None
    current: str | None = None
    with plain_path.open("rb") as plain:
        first = json.loads(plain.readline() or b"null")
        if not isinstance(first, dict) or first.get("header_sha256") != (
            hashlib.sha256(raw).hexdigest()
        ):
            raise CryptoIntegrityError("backup header does not belong to its contents")
        for line in plain:
            if sums is not None:
                raise CryptoIntegrityError("backup has data after its end")
            item = json.loads(line)
            if isinstance(item, list):
                if current is None:
                    raise CryptoIntegrityError("backup has rows outside a table")
                written[current].update(line)
                try:
                    keyed[current].update(_keyed(tables[current], item))
                except ValueError:
                    raise CryptoIntegrityError(f"backup has a damaged row in {current}") from None
                counts[current] += 1
            elif "table" in item:
                current = item["table"]
                tables[current] = item["columns"]
                written[current] = hashlib.sha256()
                keyed[current] = hashlib.sha256()
                counts[current] = 0
            elif "end" in item:
                sums = item["end"]
    if sums is None:
        raise CryptoIntegrityError("backup is truncated (no end record)")
    by_name = {t: [counts[t], keyed[t].hexdigest()] for t in tables}
    as_written = {t: [counts[t], written[t].hexdigest()] for t in tables}
    if (as_written if header["format"] == 1 else by_name) != sums:
        raise CryptoIntegrityError("backup rows do not match their checksums")
    sums = by_name
    return _Checked(header["dialect"], tables, sums, plain_path)


def _table_rows(checked: _Checked) -> Iterator[tuple[str, list[Any]]]:
    current = ""
    with checked.plain.open("rb") as plain:
        plain.readline()
        for line in plain:
            item = json.loads(line)
            if isinstance(item, list):
                yield current, [_decode(v) for v in item]
            elif "table" in item:
                current = item["table"]


def restore(runtime: Any, src: BinaryIO, provider: KeyProvider) -> BackupInfo:
    """Restore the backup in ``src`` into ``runtime``'s empty database."""
    db = runtime.db
    with tempfile.TemporaryDirectory(prefix="qiao-restore-") as work:
        try:
            checked = _check(src, provider, Path(work))
        except CryptoError as exc:
            raise BadUserInput(f"the backup is refused, nothing was written: {exc}") from None
        if checked.dialect != db.dialect:
            raise BadUserInput(
                f"this backup is of a {checked.dialect} database; restore it into {checked.dialect}"
            )
        with db.read() as conn:
            if inspect(conn).get_table_names():
                raise BadUserInput("restore needs an empty database; this one has tables")
        rows = 0
        with db.write() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            ddl.upgrade_kernel(conn)
            kernel = [t for t in checked.tables if t.startswith("qiao")]
            rows = _load(conn, checked, kernel, clear=True)
            ddl.apply_entities(conn, runtime.build_registry(conn))
            others = [t for t in checked.tables if not t.startswith("qiao")]
            rows += _load(conn, checked, others, clear=False)
            if checksums(conn) != checked.sums:
                raise BadUserInput(
                    "the restored rows do not match the backup's checksums (the target "
                    "database's schema differs); nothing was written"
                )
            _fix_sequences(conn)
        return BackupInfo(len(checked.tables), rows, checked.plain.stat().st_size)


def _load(conn: Connection, checked: _Checked, names: list[str], *, clear: bool) -> int:
    metadata = MetaData()
    metadata.reflect(bind=conn)
    missing = [n for n in names if n not in metadata.tables]
    if missing:
        raise BadUserInput(
            f"the backup holds tables this deployment does not make: {', '.join(missing)} "
            "(enable the same plugins as the backed-up deployment)"
        )
    wanted = set(names)
    rows_by_table: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for name, row in _table_rows(checked):
        if name in wanted:
            rows_by_table[name].append(dict(zip(checked.tables[name], row, strict=True)))
    count = 0
    order = _insert_order(metadata)
    ordered = [t for t, _ in order if t is not None and t.name in wanted]
    # The columns of the keys the order left out, by table: empty at first, filled in after.
    later: dict[str, set[str]] = {}
    for constraint in (c for table, left in order if table is None for c in left):
        later.setdefault(constraint.table.name, set()).update(constraint.column_keys)
    if clear:
        for table in reversed(ordered):
            conn.execute(delete(table))
    for table in ordered:
        rows = _parents_first(table, rows_by_table[table.name])
        empty = dict.fromkeys(later.get(table.name, ()))
        inserted = [{**row, **empty} for row in rows] if empty else rows
        for start in range(0, len(rows), 500):
            conn.execute(table.insert(), inserted[start : start + 500])
        count += len(rows)
    for table in ordered:
        _fill_in(conn, table, later.get(table.name, set()), rows_by_table[table.name])
    return count


def _fill_in(conn: Connection, table: Table, columns: set[str], rows: list[dict[str, Any]]) -> None:
    """Set the keys :func:`_insert_order` left out, now that the rows they refer to are in."""
    keys = list(table.primary_key.columns)
    for column in sorted(columns):
        values = [
            {**{f"key_{k.name}": row[k.name] for k in keys}, "value": row[column]}
            for row in rows
            if row[column] is not None
        ]
        if values:
            stmt = (
                update(table)
                .where(*(k == bindparam(f"key_{k.name}") for k in keys))
                .values({column: bindparam("value")})
            )
            conn.execute(stmt, values)


def _parents_first(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered so that a row referring to its own table comes after its target."""
    own = [
        (fk.parent.name, fk.column.name)
        for fk in table.foreign_keys
        if fk.column.table.name == table.name
    ]
    if not own or not rows:
        return rows
    done: set[Any] = set()
    ordered: list[dict[str, Any]] = []
    pending = rows
    while pending:
        keep = []
        for row in pending:
            if all(row[c] is None or row[c] in done for c, _ in own):
                ordered.append(row)
                done.update(row[t] for _, t in own)
            else:
                keep.append(row)
        if len(keep) == len(pending):
            return ordered + keep  # a cycle or a dangling reference: the database decides
        pending = keep
    return ordered


def _fix_sequences(conn: Connection) -> None:
    """PostgreSQL: serial columns continue after the restored ids."""
    if conn.dialect.name != "postgresql":
        return
    for table in inspect(conn).get_table_names():
        for column in inspect(conn).get_columns(table):
            default = str(column.get("default") or "")
            if "nextval" in default:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f'COALESCE((SELECT MAX("{column["name"]}") FROM "{table}"), 0) + 1, false)'
                    ),
                    {"t": table, "c": column["name"]},
                )


def provider_or_error(provider: KeyProvider | None) -> KeyProvider:
    if provider is None:
        raise ConfigurationError(
            "backups are encrypted with the deployment's KEK: configure [keys] in qiao.toml"
        )
    return provider
