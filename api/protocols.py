"""The shapes of the objects Qiao hands to plugins, as protocols.

A plugin types its code against these, not against Qiao's classes: the classes
may change in any release, while these change only as docs/plugins.md's
versioning policy allows. Each protocol lists exactly what a plugin may use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Connection, FromClause, Table

if TYPE_CHECKING:
    import pluggy

    from qiao.core.actor import Actor
    from qiao.core.config import Config
    from qiao.core.metadata.model import EntityDef
    from qiao.core.permissions.rights import Right
    from qiao.core.records.batch import Created, Upserted
    from qiao.core.records.context import Source, WriteContext
    from qiao.core.records.service import Page, UniqueIds

Record = dict[str, Any]
_T = TypeVar("_T")


class Catalog(Protocol):
    """The metadata in force: entities, their fields and their tables."""

    @property
    def version(self) -> int: ...

    def entity(self, name: str) -> EntityDef: ...

    def table(self, name: str) -> Table: ...


class Database(Protocol):
    """Connections to the deployment's database, one transaction each."""

    @property
    def dialect(self) -> str: ...

    def read(self) -> AbstractContextManager[Connection]: ...

    def run_read(self, work: Callable[[Connection], _T], *, snapshot: bool = False) -> _T:
        """``work(conn)`` as a read; without ``snapshot``, each statement commits alone on
        PostgreSQL (no BEGIN and ROLLBACK round trips), which suits a single-statement
        read. ``work`` must do nothing but read: it runs again on a dead connection."""
        ...

    def write(self) -> AbstractContextManager[Connection]: ...


class Records(Protocol):
    """The records service: the one door to record data (docs/plugins.md).

    Writes take a :class:`WriteContext` from :meth:`transaction` (or a hook's
    ``context``); reads take a connection and the actor whose rules apply.
    """

    @property
    def catalog(self) -> Catalog: ...

    def clock(self) -> dt.datetime: ...

    def transaction(
        self, actor: Actor, source: Source, request_id: str | None = None
    ) -> AbstractContextManager[WriteContext]: ...

    def run(
        self,
        actor: Actor,
        source: Source,
        work: Callable[[WriteContext], _T],
        request_id: str | None = None,
    ) -> _T: ...

    def create(self, ctx: WriteContext, entity_name: str, values: Mapping[str, Any]) -> Record: ...

    def create_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        skip_invalid: bool = False,
    ) -> Created: ...

    def update(
        self,
        ctx: WriteContext,
        entity_name: str,
        record_id: str,
        values: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> Record: ...

    def update_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        writes: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        skip_invalid: bool = False,
    ) -> Created:
        """``update`` for a batch of ``(record id, values)`` of one entity: one locked read,
        one ``UPDATE`` per set of changed columns, one re-read, the write hooks once per
        batch. Refused rows are reported by index (``RowsRefused``) and nothing is
        written; with ``skip_invalid``, rows refused before the hooks (values, fields,
        a record not found or outside the caller's scope) are left out and listed in
        ``refused``. A row that changes nothing is answered with its record."""
        ...

    def delete(self, ctx: WriteContext, entity_name: str, record_id: str) -> Record: ...

    def upsert(
        self, ctx: WriteContext, entity_name: str, key: str, values: Mapping[str, Any]
    ) -> tuple[Record, bool]:
        """Create the record whose external-id field ``key`` has ``values[key]``, or update it;
        the record and whether it was created.

        For connectors and imports that carry another system's key, so reading the same
        remote record twice writes it once. The lookup is the caller's: a record the
        actor may not read is not found, and creating it then meets the unique key
        (CONFLICT). ``key`` must be an ``external_id`` field (BAD_USER_INPUT otherwise).
        """
        ...

    def upsert_many(
        self,
        ctx: WriteContext,
        entity_name: str,
        key: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        skip_invalid: bool = False,
    ) -> Upserted:
        """``upsert`` for a batch, as one upsert after another would write it: the keys
        looked up in one query, the new records created with one ``create_many``, the
        records named read in one query and a row that would change nothing left
        unwritten (no hook runs for it), the others updated with one ``update_many``; a
        key repeated in the batch is written in input order. Refused rows are reported
        by index (``RowsRefused``) and nothing is written; with ``skip_invalid`` they are
        left out and listed in ``refused``, and creates or updates refused as a whole
        are tried again one by one."""
        ...

    def get(
        self,
        conn: Connection,
        entity_name: str,
        record_id: str,
        *,
        actor: Actor,
        lock: bool = False,
    ) -> Record | None: ...

    def require(
        self,
        conn: Connection,
        entity_name: str,
        record_id: str,
        *,
        actor: Actor,
        field: str = "id",
        lock: bool = False,
    ) -> Record:
        """As ``get``, but a record that is not there (or the actor may not read) is
        NOT_FOUND, ``no <entity> with id <id>``, placed at ``field``."""
        ...

    def list(
        self,
        conn: Connection,
        entity_name: str,
        *,
        filter: Mapping[str, Any] | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        with_total: bool = False,
        actor: Actor,
    ) -> Page: ...

    def ids_by_unique(
        self,
        conn: Connection,
        entity_name: str,
        field_name: str,
        values: Iterable[Any],
        *,
        actor: Actor,
    ) -> UniqueIds: ...


class Access(Protocol):
    """What one caller may do, as checks and as SQL (docs/permissions.md)."""

    def can(self, entity: str, right: Right) -> bool: ...

    def require(self, entity: str, right: Right) -> None: ...

    def row_filter(
        self, entity: str, table: FromClause, right: Right
    ) -> ColumnElement[bool] | None: ...


class Plugins(Protocol):
    """The deployment's plugins: their names, and pluggy's hook relay for plugin hooks."""

    @property
    def names(self) -> list[str]: ...

    @property
    def hook(self) -> pluggy.HookRelay: ...


class Runtime(Protocol):
    """One deployment in one process: its settings, database, metadata, plugins and records."""

    @property
    def config(self) -> Config: ...

    @property
    def db(self) -> Database: ...

    @property
    def records(self) -> Records: ...

    @property
    def plugins(self) -> Plugins: ...

    @property
    def started(self) -> bool: ...

    def current(self) -> Catalog: ...

    def access_for(self, actor: Actor) -> Access: ...

    def state(self, key: str, make: Callable[[Any], _T]) -> _T:
        """This runtime's one ``key`` object (a plugin's cache or client), made on first use.

        An object with a ``close()`` method is closed when the runtime closes.
        """
        ...
