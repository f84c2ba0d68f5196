"""Data keys and blind-index keys, stored wrapped in ``qiao_data_key``.

One data key seals the values of one entity at a time (its *active* key);
keys it replaced stay readable (*previous*) until ``qiao keys rotate --data``
has re-sealed their values and ``qiao keys retire`` destroys them. Each
entity also has one active blind-index key; per-field index keys are derived
from it, so equal values in two fields give unrelated indexes. Index keys
rotate on their own (``qiao keys rotate --index``): while a previous one still
indexes values, lookups compute the index under every live key. Everything is
wrapped by the deployment's KEK (:mod:`qiao.core.encryption.settings`).

Other processes see a key change within :data:`KEYS_TTL` seconds, without a
restart: each process re-reads the KEK provider (a new version in the key
file), the active data key and the index keys of an entity at most that long
after it last read them, and an unwrap that fails is retried once with a
freshly made provider. ``qiao keys rotate --data`` and ``--index`` wait that
long after making their new key, so no process still seals or indexes under
the old one once their pass begins.

Counting. Random 96-bit nonces allow a bounded number of values per key
(docs/crypto.md). Each process reserves *leases* of :data:`LEASE` seals with
an atomic ``UPDATE ... SET sealed = sealed + n WHERE sealed + n <= limit`` in
the writing transaction; if that transaction rolls back, the process drops
what remains of the lease. A key that cannot grant a lease is replaced by a
new active key in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, event, insert, select, update

from qiao.core.crypto import (
    CryptoError,
    DataKey,
    KeyProvider,
    KeyUnavailableError,
    WrappedDataKey,
    hmac_sm3,
    unwrap_data_key,
    wrap_data_key,
)
from qiao.core.crypto.sm4gcm import RANDOM_NONCE_LIMIT
from qiao.core.encryption.settings import ProviderFactory
from qiao.core.errors import ConfigurationError
from qiao.core.storage.database import Database
from qiao.core.storage.system import data_key as key_table

DATA = "data"
INDEX = "index"
ACTIVE = "active"
PREVIOUS = "previous"
#: Seals a process reserves at once from a data key's stored count.
LEASE = 256
#: Seconds a process keeps its KEK provider, an entity's active data key and its list of
#: blind-index keys before reading them again: the bound on how late it sees a rotation.
KEYS_TTL = 5.0
_INDEX_KEY_INFO = b"qiao blind index key v1\x00"


def key_name(prefix: str, entity: str, number: int | None = None) -> str:
    """``dek-account-3`` / ``bik-account``, shortened with a hash beyond 64 characters."""
    name = f"{prefix}-{entity}" + (f"-{number}" if number is not None else "")
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    tail = f"-{number}" if number is not None else ""
    return f"{name[: 64 - len(tail) - 11]}-{digest}{tail}"


def index_key_version(key_id: str, entity: str) -> int:
    """The version of a blind-index key: ``bik-<entity>`` is 1, ``bik-<entity>-N`` is N."""
    return 1 if key_id == key_name("bik", entity) else int(key_id.rsplit("-", 1)[1])


@dataclass(frozen=True)
class IndexKey:
    """One live blind-index key of an entity; ``version`` tags the indexes it makes."""

    key_id: str
    version: int
    secret: bytes
    _fields: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def for_field(self, name: str) -> bytes:
        """The HMAC-SM3 key of one field's index, derived so fields do not share indexes."""
        derived = self._fields.get(name)
        if derived is None:
            derived = self._fields[name] = hmac_sm3(self.secret, _INDEX_KEY_INFO + name.encode())
        return derived


@dataclass(frozen=True)
class KeyInfo:
    """One row of the key table, without its secret."""

    key_id: str
    entity: str
    purpose: str
    state: str
    kek_id: str
    sealed: int
    limit: int


class KeyStore:
    """The loaded keys of one deployment in one process (a :class:`KeyLookup`)."""

    def __init__(
        self, db: Database, provider: ProviderFactory, *, limit: int = RANDOM_NONCE_LIMIT
    ) -> None:
        self.db = db
        self._provider_factory = provider
        self._provider: KeyProvider | None = None
        self._provider_expiry = 0.0
        #: The message limit given to data keys made by this process.
        self.limit = limit
        self._lock = threading.RLock()
        self._keys: dict[str, DataKey] = {}
        #: Entity -> (monotonic expiry, id of its active data key).
        self._active: dict[str, tuple[float, str]] = {}
        #: Entity -> (monotonic expiry, live index keys with the active one first).
        self._index: dict[str, tuple[float, list[IndexKey]]] = {}
        self._budget: dict[str, int] = {}

    # -- The provider ---------------------------------------------------------------------

    @property
    def provider(self) -> KeyProvider:
        """The deployment's KEK provider, made again every :data:`KEYS_TTL` seconds.

        None configured is a ConfigurationError.
        """
        if self._provider is None or time.monotonic() >= self._provider_expiry:
            self.use_provider(self._make_provider())
        assert self._provider is not None
        return self._provider

    def _make_provider(self) -> KeyProvider:
        provider = self._provider_factory()
        if provider is None:
            raise ConfigurationError(
                'encrypted fields need a key provider: add [keys] provider = "file" and '
                'file = "qiao-kek.json" to qiao.toml (qiao init writes both), or set '
                "QIAO_KEY_FILE (docs/encryption.md)"
            )
        return provider

    def use_provider(self, provider: KeyProvider) -> None:
        """Use ``provider`` from now on (for :data:`KEYS_TTL` seconds)."""
        with self._lock:
            self._provider = provider
            self._provider_expiry = time.monotonic() + KEYS_TTL

    @property
    def configured(self) -> bool:
        """Whether a provider is configured (without loading it)."""
        try:
            return self._provider is not None or self._provider_factory() is not None
        except ConfigurationError:
            return True

    def forget(self) -> None:
        """Drop every loaded key and the provider (after a KEK rotation)."""
        with self._lock:
            self._provider = None
            self._provider_expiry = 0.0
            self._keys.clear()
            self._active.clear()
            self._index.clear()
            self._budget.clear()

    # -- Lookup ---------------------------------------------------------------------------

    def lookup(self, key_id: str) -> DataKey:
        """The data key ``key_id``, unwrapped from the key table on first use."""
        key = self._keys.get(key_id)
        if key is not None:
            return key
        with self.db.read() as conn:
            row = conn.execute(select(key_table).where(key_table.c.key_id == key_id)).first()
        if row is None:
            raise KeyUnavailableError(
                f"data key {key_id!r} is not in the key table; it was retired while values "
                "still used it, or the database was restored without it"
            )
        return self._load(row._mapping)

    def _load(self, row: object) -> DataKey:
        """Unwrap a key-table row; on failure, once more with a provider made afresh.

        Another process may have added a KEK version and re-wrapped the key
        since this process made its provider.
        """
        m = dict(row)  # type: ignore[call-overload]
        stored = WrappedDataKey(m["key_id"], m["kek_id"], bytes(m["wrapped"]))
        provider = self.provider
        try:
            key = unwrap_data_key(provider, stored)
        except CryptoError:
            try:
                fresh = self._make_provider()
                key = unwrap_data_key(fresh, stored)
            except CryptoError as exc:
                raise ConfigurationError(f"cannot unwrap {m['key_id']}: {exc}") from None
            if self._provider is provider:
                self.use_provider(fresh)
        with self._lock:
            return self._keys.setdefault(key.key_id, key)

    def check(self, conn: Connection) -> int:
        """Unwrap every stored key; a missing or wrong KEK is a ConfigurationError."""
        rows = conn.execute(select(key_table)).all()
        for row in rows:
            self._load(row._mapping)
        return len(rows)

    # -- Data keys --------------------------------------------------------------------------

    def active_key_id(self, entity: str) -> str | None:
        """The active data key of ``entity`` as stored now (None before its first value)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(key_table.c.key_id).where(
                    key_table.c.entity == entity,
                    key_table.c.purpose == DATA,
                    key_table.c.state == ACTIVE,
                )
            ).first()
        return None if row is None else row.key_id

    def active_key(self, conn: Connection, entity: str) -> DataKey:
        """The data key new values of ``entity`` are sealed with; made on first need."""
        cached = self._active.get(entity)
        if cached is not None and cached[0] > time.monotonic():
            return self.lookup(cached[1])
        row = conn.execute(
            select(key_table).where(
                key_table.c.entity == entity,
                key_table.c.purpose == DATA,
                key_table.c.state == ACTIVE,
            )
        ).first()
        if row is None:
            key = self._create(conn, entity)
        else:
            key = self._keys.get(row.key_id) or self._load(row._mapping)
        with self._lock:
            if cached is not None and cached[1] != key.key_id:
                self._budget.pop(cached[1], None)
            self._active[entity] = (time.monotonic() + KEYS_TTL, key.key_id)
        return key

    def reserve(self, conn: Connection, entity: str, count: int) -> DataKey:
        """The active data key of ``entity``, with ``count`` seals reserved for the caller."""
        for _ in range(3):
            key = self.active_key(conn, entity)
            with self._lock:
                if self._budget.get(key.key_id, 0) >= count:
                    self._budget[key.key_id] -= count
                    return key
            lease = max(LEASE, count)
            granted = conn.execute(
                update(key_table)
                .where(
                    key_table.c.key_id == key.key_id,
                    key_table.c.state == ACTIVE,
                    key_table.c.sealed + lease <= key_table.c.limit,
                )
                .values(sealed=key_table.c.sealed + lease)
            ).rowcount
            if granted == 1:
                self._on_rollback(conn, key.key_id)
                with self._lock:
                    self._budget[key.key_id] = self._budget.get(key.key_id, 0) + lease - count
                return key
            self._replace(conn, entity, key.key_id)
        raise ConfigurationError(f"could not reserve seals under a data key of {entity}")

    def _on_rollback(self, conn: Connection, key_id: str) -> None:
        def drop(_conn: Connection) -> None:
            with self._lock:
                self._budget.pop(key_id, None)

        event.listen(conn, "rollback", drop, once=True)

    def _replace(self, conn: Connection, entity: str, key_id: str) -> None:
        """Make a new active key for ``entity``: ``key_id`` reached its limit or was rotated."""
        conn.execute(
            update(key_table)
            .where(key_table.c.key_id == key_id, key_table.c.state == ACTIVE)
            .values(state=PREVIOUS)
        )
        with self._lock:
            self._active.pop(entity, None)
            self._budget.pop(key_id, None)

    def rotate_data_key(self, conn: Connection, entity: str) -> DataKey:
        """A new active data key for ``entity``; the old one stays readable."""
        row = conn.execute(
            select(key_table.c.key_id).where(
                key_table.c.entity == entity,
                key_table.c.purpose == DATA,
                key_table.c.state == ACTIVE,
            )
        ).first()
        if row is not None:
            self._replace(conn, entity, row.key_id)
        return self.active_key(conn, entity)

    def _create(self, conn: Connection, entity: str) -> DataKey:
        """A new active data key numbered after every key of ``entity`` still stored.

        Retired keys are gone from the table, so the count of stored keys would
        give a number in use; the highest number is always the active key's.
        """
        names = conn.execute(
            select(key_table.c.key_id).where(
                key_table.c.entity == entity, key_table.c.purpose == DATA
            )
        ).scalars()
        number = max((int(name.rsplit("-", 1)[1]) for name in names), default=0) + 1
        key = DataKey.generate(key_name("dek", entity, number), limit=self.limit)
        self._insert(conn, entity, DATA, key)
        return key

    def _insert(self, conn: Connection, entity: str, purpose: str, key: DataKey) -> None:
        wrapped = wrap_data_key(self.provider, key)
        conn.execute(
            insert(key_table).values(
                key_id=key.key_id,
                entity=entity,
                purpose=purpose,
                state=ACTIVE,
                kek_id=wrapped.kek_id,
                wrapped=wrapped.wrapped,
                sealed=0,
                limit=key.limit,
                created_at=dt.datetime.now(dt.UTC),
            )
        )

        def drop(_conn: Connection) -> None:
            with self._lock:
                self._keys.pop(key.key_id, None)
                for name, (_, active) in list(self._active.items()):
                    if active == key.key_id:
                        del self._active[name]
                if purpose == INDEX:
                    self._index.pop(entity, None)

        event.listen(conn, "rollback", drop, once=True)
        with self._lock:
            self._keys[key.key_id] = key

    # -- Blind-index keys -------------------------------------------------------------------

    def index_keys(self, conn: Connection | None, entity: str) -> list[IndexKey]:
        """The live blind-index keys of ``entity``, the active one first.

        With a connection (a write), the first key is made when there is none;
        without one (a lookup), an entity that never indexed anything gets a
        throwaway key, which finds nothing, as it should.
        """
        cached = self._index.get(entity)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        rows = self._index_rows(conn, entity)
        if not rows and conn is None:
            return [IndexKey(key_name("bik", entity), 1, DataKey.generate("unused").secret)]
        if not rows:
            key = DataKey.generate(key_name("bik", entity))
            self._insert(conn, entity, INDEX, key)  # type: ignore[arg-type]
            live = [IndexKey(key.key_id, 1, key.secret)]
        else:
            live = sorted(
                (
                    IndexKey(
                        str(r["key_id"]),
                        index_key_version(str(r["key_id"]), entity),
                        self._load(r).secret,
                    )
                    for r in rows
                ),
                key=lambda k: -k.version,
            )
            active = [str(r["key_id"]) for r in rows if r["state"] == ACTIVE]
            live.sort(key=lambda k: k.key_id not in active)
        with self._lock:
            self._index[entity] = (time.monotonic() + KEYS_TTL, live)
        return live

    def _index_rows(self, conn: Connection | None, entity: str) -> list[dict[str, object]]:
        stmt = select(key_table).where(key_table.c.entity == entity, key_table.c.purpose == INDEX)
        if conn is not None:
            return [dict(r._mapping) for r in conn.execute(stmt)]
        with self.db.read() as read:
            return [dict(r._mapping) for r in read.execute(stmt)]

    def rotate_index_key(self, conn: Connection, entity: str) -> IndexKey:
        """A new active blind-index key for ``entity``; the old one stays live for lookups."""
        rows = self._index_rows(conn, entity)
        versions = [index_key_version(str(r["key_id"]), entity) for r in rows]
        conn.execute(
            update(key_table)
            .where(
                key_table.c.entity == entity,
                key_table.c.purpose == INDEX,
                key_table.c.state == ACTIVE,
            )
            .values(state=PREVIOUS)
        )
        number = max(versions, default=0) + 1
        name = key_name("bik", entity, number) if number > 1 else key_name("bik", entity)
        key = DataKey.generate(name)
        self._insert(conn, entity, INDEX, key)
        with self._lock:
            self._index.pop(entity, None)
        return IndexKey(key.key_id, number, key.secret)

    # -- Status and rotation ----------------------------------------------------------------

    def status(self, conn: Connection) -> list[KeyInfo]:
        rows = conn.execute(select(key_table).order_by(key_table.c.key_id)).all()
        return [
            KeyInfo(r.key_id, r.entity, r.purpose, r.state, r.kek_id, r.sealed, r.limit)
            for r in rows
        ]

    def rewrap(self, conn: Connection, old: KeyProvider | None = None) -> int:
        """Re-wrap every stored key under the provider's current KEK; returns how many."""
        provider = self.provider
        source = old or provider
        count = 0
        for row in conn.execute(select(key_table)).all():
            if row.kek_id == provider.kek_id:
                continue
            stored = WrappedDataKey(row.key_id, row.kek_id, bytes(row.wrapped))
            key = unwrap_data_key(source, stored)
            fresh = wrap_data_key(provider, key)
            conn.execute(
                update(key_table)
                .where(key_table.c.key_id == row.key_id)
                .values(kek_id=fresh.kek_id, wrapped=fresh.wrapped)
            )
            count += 1
        return count

    def delete_keys(self, conn: Connection, key_ids: Iterable[str]) -> None:
        for key_id in key_ids:
            conn.execute(key_table.delete().where(key_table.c.key_id == key_id))
            with self._lock:
                self._keys.pop(key_id, None)
                self._index.clear()
