"""Sealing and opening the values of encrypted fields, and their blind indexes.

The records service calls :meth:`FieldEncryption.seal` on the column values it
is about to write (already coerced and normalised) and :meth:`FieldEncryption.open`
on every row it reads. Each value is sealed with its entity's active data key
and bound to (entity, field, record id), so a value copied to another record
or field no longer opens. A searchable field's ``<column>_bidx`` gets the
HMAC-SM3 blind index of the same value.

GraphQL reads are compiled to one SQL statement whose JSON the database builds;
the database cannot open sealed values. The compiler emits each encrypted
field as :meth:`FieldEncryption.marked` text (a per-process random marker, the
field's context and the sealed value), and :meth:`FieldEncryption.reveal`
replaces those strings with the opened values. A stored value cannot forge the
marker: it is random, and never leaves the process.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, String, cast, inspect, literal, select

from qiao.core.crypto import (
    CryptoIntegrityError,
    FieldContext,
    IndexKind,
    blind_index,
    normalised,
    open_column,
    seal_text,
)
from qiao.core.crypto.sm4gcm import FIELD_PREFIX
from qiao.core.encryption.keystore import IndexKey, KeyStore
from qiao.core.errors import BadUserInput
from qiao.core.masking import Mask, apply_mask
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.redaction import Sensitive, sensitive

log = logging.getLogger("qiao.encryption")

BIDX_SUFFIX = "_bidx"
#: Indexes made by index key version N > 1 read ``N:<hex>``, cut to the column's width;
#: version 1's are the bare hex, as they were before index keys rotated.
INDEX_TAG = ":"
INDEX_WIDTH = 64
#: How many lately sealed values a process remembers in plaintext (see FieldEncryption).
RECENT_SEALS = 1024


def index_version(stored: str) -> int:
    """The version of the index key that made a stored blind index."""
    tag, sep, _ = stored.partition(INDEX_TAG)
    return int(tag) if sep else 1


def encrypted_fields(entity: EntityDef) -> list[FieldDef]:
    return [f for f in entity.fields if f.encrypted]


def index_column(field: FieldDef) -> str:
    """The column holding a searchable field's blind index."""
    return field.column + BIDX_SUFFIX


def index_kind(field: FieldDef) -> IndexKind:
    """How a value is normalised before indexing: e-mail lower-cased, phones E.164."""
    if field.type is FieldType.EMAIL:
        return "email"
    if field.type is FieldType.PHONE:
        return "phone"
    return "text"


class FieldEncryption:
    """Seals, opens and indexes encrypted field values for one deployment."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.marker = f"qiao-sealed-{secrets.token_hex(16)}:"
        #: Values this process sealed lately, by (token, entity, field, record id): a write
        #: reads its record back at once, and need not decrypt what it has just encrypted.
        self._recent: dict[tuple[str, str, str, str], str] = {}
        self._recent_lock = threading.Lock()
        #: Standard fields declared encrypted by the deployment (core/encryption/declared.py),
        #: whose values stored before their conversion are plaintext and read as they are.
        self.converting: frozenset[tuple[str, str]] = frozenset()

    # -- Writes -----------------------------------------------------------------------------

    def seal(
        self,
        conn: Connection,
        entity: EntityDef,
        record_id: str,
        columns: Mapping[str, Any],
    ) -> dict[str, Any]:
        """``columns`` with encrypted values sealed and blind indexes added."""
        fields = [f for f in encrypted_fields(entity) if f.column in columns]
        out = dict(columns)
        if not fields:
            return out
        present = [f for f in fields if columns[f.column] is not None]
        key = self.keys.reserve(conn, entity.name, len(present)) if present else None
        for field in fields:
            value = columns[field.column]
            if field.searchable:
                out[index_column(field)] = (
                    None if value is None else self.index(conn, entity.name, field, value)
                )
            if value is None:
                continue
            assert key is not None
            context = FieldContext(entity.name, field.name, record_id)
            token = seal_text(str(value), key, context)
            self._remember((token, entity.name, field.name, record_id), str(value))
            out[field.column] = token
        return out

    def _remember(self, sealed: tuple[str, str, str, str], plaintext: str) -> None:
        with self._recent_lock:
            if len(self._recent) >= RECENT_SEALS:
                del self._recent[next(iter(self._recent))]
            self._recent[sealed] = plaintext

    def index(self, conn: Connection | None, entity: str, field: FieldDef, value: Any) -> str:
        """The blind index of ``value`` in ``entity.field``, under the active index key."""
        return self._index(self.keys.index_keys(conn, entity)[0], field, value)

    def lookup(
        self, conn: Connection | None, entity: str, field: FieldDef, value: Any
    ) -> list[str]:
        """Every index ``value`` may be stored under: one per live index key.

        While ``qiao keys rotate --index`` re-indexes an entity, its rows hold
        indexes made by either key; a lookup must find both.
        """
        keys = self.keys.index_keys(conn, entity, create=False)
        return [self._index(key, field, value) for key in keys]

    def matching(
        self,
        conn: Connection | None,
        table: Any,
        entity: str,
        field: FieldDef,
        values: Sequence[Any],
    ) -> list[str]:
        """The ids of rows of ``table`` whose ``field`` holds one of ``values``.

        Rows are found through the blind index, then each candidate's value is
        opened and compared with the sought ones (normalised as the index
        normalises): an index value written by hand, copied from another row or
        colliding never returns a row whose value differs. ``table`` may be an
        alias (compiled GraphQL reads); without ``conn`` a read connection of
        the deployment's database is used.
        """
        indexes = [i for v in values for i in self.lookup(conn, entity, field, v)]
        if not indexes:
            return []
        kind = index_kind(field)
        wanted = {normalised(str(v), kind) for v in values}
        stmt = select(table.c.id, table.c[field.column]).where(
            table.c[index_column(field)].in_(indexes)
        )
        if conn is None:
            with self.keys.db.read() as read:
                candidates = read.execute(stmt).all()
        else:
            candidates = conn.execute(stmt).all()
        found = []
        for record_id, token in candidates:
            if token is None:
                continue
            try:
                value = self.open_value(entity, field.name, str(record_id), token)
            except CryptoIntegrityError:
                log.warning(
                    "%s.%s of %s does not open; it is not a match", entity, field.name, record_id
                )
                continue
            if normalised(value, kind) in wanted:
                found.append(str(record_id))
            else:
                log.warning(
                    "%s.%s of %s: its blind index matches a value it does not hold "
                    "(a forged or colliding index); it is not a match",
                    entity,
                    field.name,
                    record_id,
                )
        return found

    @staticmethod
    def _index(key: IndexKey, field: FieldDef, value: Any) -> str:
        try:
            digest = blind_index(key.for_field(field.name), str(value), index_kind(field))
        except ValueError as exc:
            raise BadUserInput(f"{field.name}: {exc}", field=field.name) from None
        if key.version == 1:
            return digest
        tag = f"{key.version}{INDEX_TAG}"
        return tag + digest[: INDEX_WIDTH - len(tag)]

    # -- Reads ------------------------------------------------------------------------------

    def open(self, entity: EntityDef, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` (stored columns) with encrypted values opened; blind indexes dropped."""
        return self.open_rows(entity, [row])[0]

    def open_rows(self, entity: EntityDef, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`open` for a page of rows, in place: each field's values opened together.

        A page shares its entity, fields and, mostly, data keys; opening a
        column at a time works those out once rather than once a value.
        """
        fields = encrypted_fields(entity)
        if not fields or not rows:
            return rows
        ids = [str(row["id"]) for row in rows]
        for field in fields:
            bidx = index_column(field)
            column = field.column
            holding = []
            for row, record_id in zip(rows, ids, strict=True):
                row.pop(bidx, None)
                token = row.get(column)
                if token is not None:
                    holding.append((row, record_id, token))
            if not holding:
                continue
            values = self._open_column(
                entity.name, field.name, [(record_id, token) for _, record_id, token in holding]
            )
            for (row, _, _), value in zip(holding, values, strict=True):
                row[column] = value
        return rows

    def open_value(self, entity: str, field: str, record_id: str, token: str) -> Sensitive:
        """The plaintext of one stored value, tagged :class:`~qiao.core.redaction.Sensitive`.

        The tag is what every copy of record data redacts (docs/encryption.md).
        """
        return self._open_column(entity, field, [(str(record_id), token)])[0]

    def _open_column(
        self, entity: str, field: str, stored: list[tuple[str, str]]
    ) -> list[Sensitive]:
        """The plaintexts of ``entity.field`` in the records of ``stored`` (record id, token).

        The first value that does not open raises, naming its record.
        """
        opened: list[Sensitive | None] = [None] * len(stored)
        if self._recent:
            with self._recent_lock:
                for i, (record_id, token) in enumerate(stored):
                    # A token is only ever made once (random nonce), and its context is part
                    # of the key, so a token moved to another record or field is still opened,
                    # and refused.
                    recent = self._recent.pop((token, entity, field, record_id), None)
                    if recent is not None:
                        opened[i] = sensitive(recent)
        sealed: list[tuple[str, str]] = []
        for i, (record_id, token) in enumerate(stored):
            if opened[i] is not None:
                continue
            if token.startswith(FIELD_PREFIX):
                sealed.append((record_id, token))
            elif (entity, field) in self.converting:
                opened[i] = sensitive(token)  # stored before 'qiao keys encrypt-field' sealed it
            else:
                context = FieldContext(entity, field, record_id)
                raise CryptoIntegrityError(
                    f"{context.describe()}: the stored value is not sealed; it was written "
                    "before the field was encrypted (run 'qiao keys rotate --data') or put "
                    "there by hand"
                )
        plaintexts = open_column(entity, field, sealed, self.keys)
        if len(plaintexts) == len(stored):  # the usual page: nothing was sealed here lately
            return [Sensitive(plain, "utf-8") for plain in plaintexts]
        rest = iter(plaintexts)
        return [value if value is not None else Sensitive(next(rest), "utf-8") for value in opened]

    # -- Compiled GraphQL reads -------------------------------------------------------------

    def marked(self, entity: str, field: FieldDef, table: Any, mask: Mask | None = None) -> Any:
        """SQL text ``<marker><entity>:<field>[~<mask>]:<id>:<sealed value>`` (NULL stays NULL).

        With ``mask``, :meth:`reveal` gives the masked value (docs/privacy.md).
        """
        masked = f"~{mask.value}" if mask is not None else ""
        prefix = literal(f"{self.marker}{entity}:{field.name}{masked}:", String)
        record_id = cast(table.c.id, String)
        return prefix + record_id + literal(":", String) + table.c[field.column]

    def reveal(self, text: str | None) -> str | None:
        """JSON text with every marked sealed value replaced by its plaintext."""
        if text is None or self.marker not in text:
            return text
        return json.dumps(self._reveal(json.loads(text)), ensure_ascii=False)

    def reveal_data(self, data: Any) -> Any:
        """:meth:`reveal` for JSON already parsed."""
        return self._reveal(data)

    def _reveal(self, value: Any) -> Any:
        """``value`` with its marked strings replaced; those of one field opened together."""
        marked: dict[str, Any] = {}
        self._find_marked(value, marked)
        if not marked:
            return value
        fields: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
        for text in marked:
            entity, field, record_id, token = text[len(self.marker) :].split(":", 3)
            field, _, mask = field.partition("~")
            fields.setdefault((entity, field), []).append((text, mask, record_id, token))
        for (entity, field), found in fields.items():
            opened = self._open_column(entity, field, [(rid, tok) for _, _, rid, tok in found])
            for (text, mask, _, _), plain in zip(found, opened, strict=True):
                marked[text] = apply_mask(Mask(mask), plain) if mask else plain
        return self._replace_marked(value, marked)

    def _find_marked(self, value: Any, into: dict[str, Any]) -> None:
        if isinstance(value, str):
            if value.startswith(self.marker):
                into[value] = None
        elif isinstance(value, dict):
            for v in value.values():
                self._find_marked(v, into)
        elif isinstance(value, list):
            for v in value:
                self._find_marked(v, into)

    def _replace_marked(self, value: Any, opened: dict[str, Any]) -> Any:
        if isinstance(value, str):
            return opened[value] if value.startswith(self.marker) else value
        if isinstance(value, dict):
            return {k: self._replace_marked(v, opened) for k, v in value.items()}
        if isinstance(value, list):
            return [self._replace_marked(v, opened) for v in value]
        return value


def check_keys(encryption: FieldEncryption, db: Any, catalog: Any) -> None:
    """At start-up: every stored key unwraps, and encrypted fields have a provider.

    A missing or wrong KEK raises :class:`~qiao.core.errors.ConfigurationError`
    before anything is served or written. A database not yet set up is skipped;
    without a ``catalog`` (metadata not read yet) only the stored keys are checked.
    """
    entities = catalog.registry.entities.values() if catalog is not None else ()
    needed = any(encrypted_fields(e) for e in entities)
    with db.read() as conn:
        if "qiao_data_key" not in set(inspect(conn).get_table_names()):
            return
        if needed or encryption.keys.status(conn):
            encryption.keys.provider  # noqa: B018 - raises when none is configured
            encryption.keys.check(conn)
