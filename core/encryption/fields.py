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

from sqlalchemy import Connection, String, cast, literal, select

from qiao.core.crypto import (
    CryptoIntegrityError,
    FieldContext,
    IndexKind,
    blind_index,
    is_sealed,
    normalised,
    open_text,
    seal_text,
)
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
        #: Values this process sealed lately, by (token, context): a write reads its
        #: record back at once, and need not decrypt what it has just encrypted.
        self._recent: dict[tuple[str, FieldContext], str] = {}
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
            self._remember(token, context, str(value))
            out[field.column] = token
        return out

    def _remember(self, token: str, context: FieldContext, plaintext: str) -> None:
        with self._recent_lock:
            if len(self._recent) >= RECENT_SEALS:
                del self._recent[next(iter(self._recent))]
            self._recent[(token, context)] = plaintext

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
        return [self._index(key, field, value) for key in self.keys.index_keys(conn, entity)]

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
        indexes = [i for v in values for i in self.lookup(None, entity, field, v)]
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
        fields = encrypted_fields(entity)
        if not fields:
            return row
        for field in fields:
            row.pop(index_column(field), None)
            token = row.get(field.column)
            if token is not None:
                row[field.column] = self.open_value(entity.name, field.name, row["id"], token)
        return row

    def open_value(self, entity: str, field: str, record_id: str, token: str) -> Sensitive:
        """The plaintext of one stored value, tagged :class:`~qiao.core.redaction.Sensitive`.

        The tag is what every copy of record data redacts (docs/encryption.md).
        """
        context = FieldContext(entity, field, str(record_id))
        with self._recent_lock:
            # A token is only ever made once (random nonce), and its context is part of the
            # key, so a token moved to another record or field is still opened, and refused.
            recent = self._recent.pop((token, context), None)
        if recent is not None:
            return sensitive(recent)
        if not is_sealed(token):
            if (entity, field) in self.converting:
                return sensitive(token)  # stored before 'qiao keys encrypt-field' sealed it
            raise CryptoIntegrityError(
                f"{context.describe()}: the stored value is not sealed; it was written "
                "before the field was encrypted (run 'qiao keys rotate --data') or put "
                "there by hand"
            )
        return sensitive(open_text(token, self.keys, context))

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
        if isinstance(value, str):
            if not value.startswith(self.marker):
                return value
            entity, field, record_id, token = value[len(self.marker) :].split(":", 3)
            field, _, mask = field.partition("~")
            opened = self.open_value(entity, field, record_id, token)
            return apply_mask(Mask(mask), opened) if mask else opened
        if isinstance(value, dict):
            return {k: self._reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._reveal(v) for v in value]
        return value


def check_keys(encryption: FieldEncryption, db: Any, catalog: Any) -> None:
    """At start-up: every stored key unwraps, and encrypted fields have a provider.

    A missing or wrong KEK raises :class:`~qiao.core.errors.ConfigurationError`
    before anything is served or written. A database not yet set up is skipped;
    without a ``catalog`` (metadata not read yet) only the stored keys are checked.
    """
    from sqlalchemy import inspect

    entities = catalog.registry.entities.values() if catalog is not None else ()
    needed = any(encrypted_fields(e) for e in entities)
    with db.read() as conn:
        if "qiao_data_key" not in set(inspect(conn).get_table_names()):
            return
        if needed or encryption.keys.status(conn):
            encryption.keys.provider  # noqa: B018 - raises when none is configured
            encryption.keys.check(conn)
