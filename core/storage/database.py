"""Engines and transactions, set up the same way for every caller.

Access is synchronous SQLAlchemy Core: the CLI, workers, tests and the API share
one code path, and on the API side the work per request is a single statement
(see docs/decisions.md, "Sync database access"). SQLite runs in WAL mode with
foreign keys on; write transactions start with ``BEGIN IMMEDIATE`` so that two
writers queue on the lock instead of failing when a reader upgrades.
PostgreSQL sessions run in UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from qiao.core.errors import ConfigurationError

log = logging.getLogger("qiao.storage")
_WRITE = "qiao_write"
_AFTER_COMMIT = "qiao_after_commit"


def after_commit(conn: Connection, action: Callable[[], None]) -> bool:
    """Run ``action`` once the write transaction of ``conn`` has committed.

    For effects outside the database that must never describe a change that was
    rolled back (a file written, a message sent). An action that fails is logged
    as an error; the committed change stands. Returns False, and does nothing,
    when ``conn`` is not a :meth:`Database.write` transaction.
    """
    pending = conn.info.get(_AFTER_COMMIT)
    if pending is None:
        return False
    pending.append(action)
    return True


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


class Database:
    """An engine plus the two kinds of transaction Qiao uses: read and write."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        url = normalise_url(url)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigurationError(f"not a database URL: {url!r}") from None
        if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ConfigurationError(
                f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
            )
        self.url = url
        self.engine: Engine = _make_engine(url, **engine_options)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            pending: list[Callable[[], None]] = []
            conn.info[_AFTER_COMMIT] = pending
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_AFTER_COMMIT, None)
        for action in pending:
            try:
                action()
            except Exception:
                # The change is committed: failing the caller now would report a write
                # that happened as one that did not. The server log says what was lost.
                log.exception("an action after a committed transaction failed")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (a deferred transaction, rolled back at the end)."""
        with self.engine.connect() as conn, conn.begin() as tx:
            yield conn
            tx.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        _configure_sqlite(engine)
        return engine
    connect_args = {"options": "-c timezone=UTC"}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True, **options)


def _configure_sqlite(engine: Engine) -> None:
    """Hand transaction control to SQLAlchemy so DDL is transactional and writers queue."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
