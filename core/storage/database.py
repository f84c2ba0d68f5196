"""Engines and transactions, set up the same way for every caller.

Access is synchronous SQLAlchemy Core: the CLI, workers, tests and the API share
one code path, and on the API side the work per request is a single statement
(see docs/decisions.md, "Sync database access"); the one exception, a cached
GraphQL read awaited in a server's event loop, is :mod:`loop_reads`. SQLite
runs in WAL mode with foreign keys on; write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing
when a reader upgrades.
PostgreSQL sessions run in UTC (options given in the URL's ``options`` are
kept). A read whose rows are chosen by values (an account's timeline) runs
under :func:`planned_per_run`, so it is planned for its own values each time:
a plan made once for every value is wrong for the large accounts of skewed
data. Other statements keep the plans PostgreSQL caches for them
(docs/benchmarks.md, the activity timeline and the GraphQL list).

A request should cost one round trip to PostgreSQL, so the pool does not
"pre-ping" a connection before handing it out. Instead a checkout looks,
without a round trip, whether the server has closed the connection (its
socket turns readable when a backend is terminated or the server restarts),
and :meth:`Database.run_read` retries a read once on a fresh connection when
the one it had turns out dead anyway (a connection dropped silently by the
network). Single-statement reads run in autocommit (:meth:`Database.run_read`),
so they send no BEGIN and no ROLLBACK. docs/deploy.md says how to size the
pools ([database] pool_size, max_overflow and read_pool_size).
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError

from qiao.core.errors import ConfigurationError, Contended

log = logging.getLogger("qiao.storage")
T = TypeVar("T")
_WRITE = "qiao_write"
_AFTER_COMMIT = "qiao_after_commit"
_BEFORE_COMMIT = "qiao_before_commit"
_STATE = "qiao_transaction_state"
_NOTIFYING = "qiao_notifying"
_TRACKED = "qiao_kept_until_commit"
_SAVEPOINTS = "qiao_savepoints"
_SAVEPOINT_SEQ = "qiao_savepoint_seq"
_CACHES = "qiao_transaction_caches"
#: SQLSTATEs of a transaction PostgreSQL ended to let a concurrent one through: the victim
#: of a deadlock and a serialization failure. Sent again, it usually succeeds.
CONTENDED_STATES = frozenset({"40P01", "40001"})


def after_commit(conn: Connection, action: Callable[[], None]) -> bool:
    """Run ``action`` once the write transaction of ``conn`` has committed.

    For effects outside the database that must never describe a change that was
    rolled back (a file written, a message sent): an action registered inside a
    savepoint that is rolled back is dropped with the writes it would describe.
    An action that fails is logged as an error; the committed change stands.
    Returns False, and does nothing, when ``conn`` is not a :meth:`Database.write`
    transaction.
    """
    pending = conn.info.get(_AFTER_COMMIT)
    if pending is None:
        return False
    pending.append(action)
    return True


def before_commit(conn: Connection, action: Callable[[], None]) -> bool:
    """Run ``action`` inside the write transaction of ``conn``, just before it commits.

    For work that must be the transaction's last: the audit log appends the
    transaction's entries here, so it locks the chain's head only for that
    insert and the commit. An action that raises rolls the transaction back.
    Actions registered meanwhile (by an action) run too, in order. Returns
    False, and does nothing, when ``conn`` is not a :meth:`Database.write`
    transaction.
    """
    pending = conn.info.get(_BEFORE_COMMIT)
    if pending is None:
        return False
    pending.append(action)
    return True


def notify_at_commit(conn: Connection, channel: str) -> None:
    """Wake the listeners of ``channel`` when ``conn``'s transaction commits (PostgreSQL's
    NOTIFY; nothing on SQLite), once per transaction.

    The channels one write transaction names are notified together, in one statement
    just before it commits: a webhook's transaction wakes the workers and the
    subscriptions in one round trip, not two. Outside a :meth:`Database.write`
    transaction, or once that statement was sent, the channel is notified at once.
    """
    if conn.dialect.name != "postgresql":
        return
    channels = kept_until_commit(conn, _NOTIFYING, lambda names: _notify(conn, names))
    if channels is None:
        _notify(conn, [channel])
    elif channel not in channels:
        channels.append(channel)


def _notify(conn: Connection, channels: list[str]) -> None:
    calls = ", ".join(f"pg_notify(:c{i}, '')" for i in range(len(channels)))
    conn.execute(text(f"SELECT {calls}"), {f"c{i}": c for i, c in enumerate(channels)})


def kept_until_commit(
    conn: Connection, key: str, write: Callable[[list[Any]], None]
) -> list[Any] | None:
    """The list ``conn``'s write transaction keeps under ``key``, handed to ``write`` just
    before it commits; None outside a :meth:`Database.write` transaction (write at once).

    For what is cheaper written once per transaction than once per write: the
    audit entries, the outbox's events, the channels to notify. A savepoint rolled
    back (an automation rule that failed, an import row refused) drops what was
    added to the list inside it, with the writes it undid. What is added after the
    list was written (by a later step of the commit) goes in a new list, written
    after it. :func:`take_kept` hands the list over earlier.
    """
    state = transaction_state(conn)
    if state is None:
        return None
    items: list[Any] | None = state.get(key)
    if items is None:
        kept: list[Any] = []
        state[key] = items = kept
        state.setdefault(_TRACKED, []).append(kept)

        def flush() -> None:
            if state.get(key) is kept:  # not taken earlier
                del state[key]
                if kept:
                    write(kept)

        before_commit(conn, flush)
    return items


def take_kept(conn: Connection, key: str) -> list[Any]:
    """What :func:`kept_until_commit` keeps under ``key``, taken now (the audit log chains
    its entries before a checkpoint); later additions start a new list."""
    state = transaction_state(conn)
    taken: list[Any] | None = state.pop(key, None) if state is not None else None
    return taken or []


def _savepoint_begun(conn: Connection, name: str | None) -> None:
    state = transaction_state(conn)
    if state is None:
        return
    if name is None:
        # SQLAlchemy names it after this event, counting the connection's savepoints; the
        # connection is new with each write transaction, as this state is.
        state[_SAVEPOINT_SEQ] = state.get(_SAVEPOINT_SEQ, 0) + 1
        name = f"sa_savepoint_{state[_SAVEPOINT_SEQ]}"
    marks = {id(items): len(items) for items in state.get(_TRACKED, [])}
    state.setdefault(_SAVEPOINTS, []).append((name, marks))


def _savepoint_ended(conn: Connection, name: str, rolled_back: bool) -> None:
    """Close the savepoint ``name`` (and any left open inside it); a rollback truncates
    the tracked lists to their lengths when it began."""
    state = transaction_state(conn)
    open_savepoints: list[tuple[str, dict[int, int]]] = (
        state.get(_SAVEPOINTS, []) if state is not None else []
    )
    names = [begun for begun, _ in open_savepoints]
    if state is None or not names:
        return
    depth = len(names) - 1 - names[::-1].index(name) if name in names else len(names) - 1
    marks = open_savepoints[depth][1]
    del open_savepoints[depth:]
    if rolled_back:
        for items in state.get(_TRACKED, []):
            del items[marks.get(id(items), 0) :]
        for cache in state.get(_CACHES, {}).values():
            cache.clear()


def transaction_cache(conn: Connection, key: str) -> dict[Any, Any] | None:
    """A dict ``conn``'s write transaction keeps under ``key`` for what it has learnt (which
    records exist, say), so that its later writes need not ask again; None outside a
    :meth:`Database.write` transaction.

    It is emptied when a savepoint is rolled back, since what was learnt inside the
    savepoint may have been undone with it, and is gone when the transaction ends.
    """
    state = transaction_state(conn)
    if state is None:
        return None
    caches: dict[str, dict[Any, Any]] = state.setdefault(_CACHES, {})
    return caches.setdefault(key, {})


def transaction_state(conn: Connection) -> dict[str, Any] | None:
    """A dict that lives as long as the write transaction of ``conn`` (None outside one).

    ``conn.info`` outlives the transaction (it belongs to the pooled connection),
    so what one transaction keeps for its commit goes here, and is gone when the
    transaction ends, committed or rolled back.
    """
    state: dict[str, Any] | None = conn.info.get(_STATE)
    return state


@dataclass(frozen=True)
class PoolSettings:
    """Connections one process keeps open (``size``) and may add for bursts (``overflow``).

    The rule (docs/deploy.md): ``size`` at least the requests one process serves
    at once, and every process's ``size + overflow + reads`` together, plus two
    for each worker, below PostgreSQL's ``max_connections``. ``reads`` is the
    pool of a server's reads awaited in its event loop (:mod:`loop_reads`; 0
    runs them in threads on the main pool).
    """

    size: int = 10
    overflow: int = 10
    reads: int = 10

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigurationError("[database] pool_size must be at least 1")
        if self.overflow < 0:
            raise ConfigurationError("[database] max_overflow must be 0 or more")
        if self.reads < 0:
            raise ConfigurationError("[database] read_pool_size must be 0 or more")


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


class Database:
    """An engine plus the two kinds of transaction Qiao uses: read and write."""

    def __init__(
        self,
        url: str,
        pool: PoolSettings | None = None,
        sqlite_functions: Mapping[str, Callable[..., Any]] = MappingProxyType({}),
        **engine_options: Any,
    ) -> None:
        """``sqlite_functions`` are SQL functions (by name) every SQLite connection gets, for
        what the layers above compute in SQL with an expression SQLite cannot parse."""
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
        self.pool = pool or PoolSettings()
        options = {"pool_size": self.pool.size, "max_overflow": self.pool.overflow}
        if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
            options = {}  # an in-memory database lives in one connection (SingletonThreadPool)
        elif parsed.get_backend_name() == "sqlite" and not parsed.query.get("mode"):
            create_private_file(Path(parsed.database))
        self.engine: Engine = _make_engine(url, sqlite_functions, **{**options, **engine_options})
        event.listen(self.engine, "savepoint", _savepoint_begun)
        event.listen(
            self.engine,
            "rollback_savepoint",
            lambda conn, name, _context: _savepoint_ended(conn, name, rolled_back=True),
        )
        event.listen(
            self.engine,
            "release_savepoint",
            lambda conn, name, _context: _savepoint_ended(conn, name, rolled_back=False),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on error.

        A transaction PostgreSQL ends to break a deadlock or a serialization
        conflict raises :class:`~qiao.core.errors.Contended` (a ``CONFLICT`` that
        may be sent again); :meth:`RecordsService.run` runs the work again instead.

        ``durable=False`` is for bookkeeping that a server crash may undo
        harmlessly because it is redone (the outbox's claims and outcomes, which
        are at-least-once anyway): PostgreSQL then commits without waiting for
        the WAL to reach the disk, a few milliseconds less per transaction.
        """
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            pending: list[Callable[[], None]] = []
            last: list[Callable[[], None]] = []
            # The after-commit actions are tracked like kept_until_commit's lists, so a
            # savepoint rolled back drops those registered inside it.
            state: dict[str, Any] = {_TRACKED: [pending]}
            conn.info.update({_AFTER_COMMIT: pending, _BEFORE_COMMIT: last, _STATE: state})
            try:
                with conn.begin():
                    if not durable and self.dialect == "postgresql":
                        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    yield conn
                    done = 0
                    while done < len(last):  # an action may register more
                        last[done]()
                        done += 1
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) not in CONTENDED_STATES:
                    raise
                # Logged for whoever looks for lock-ordering faults; the caller gets CONFLICT.
                log.warning("the database ended a write transaction: %s", str(exc.orig).strip())
                raise Contended(
                    "this change met a concurrent change to the same records and was not "
                    "written; send it again"
                ) from exc
            finally:
                for key in (_AFTER_COMMIT, _BEFORE_COMMIT, _STATE):
                    conn.info.pop(key, None)
        for action in pending:
            try:
                action()
            except Exception:
                # The change is committed: failing the caller now would report a write
                # that happened as one that did not. The server log says what was lost.
                log.exception("an action after a committed transaction failed")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work: a deferred transaction on SQLite, rolled back at the end;
        on PostgreSQL a READ ONLY one, committed at the end.

        Its statements share one snapshot on PostgreSQL; a single statement
        needs none, and :meth:`run_read` saves it the BEGIN and the end. Ending
        with COMMIT keeps the connection's prepared statements: after a ROLLBACK
        psycopg sends DEALLOCATE ALL, and every read would prepare its statements
        anew. READ ONLY makes that COMMIT keep nothing: PostgreSQL refuses a write.
        """
        with self.engine.connect() as conn:
            postgresql = self.dialect == "postgresql"
            if postgresql:
                conn = conn.execution_options(postgresql_readonly=True)
            with conn.begin() as tx:
                yield conn
                if postgresql:
                    tx.commit()
                else:
                    tx.rollback()

    def run_read(self, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
        """``work(conn)`` as a read, retried once on a fresh connection if this one is dead.

        Without ``snapshot``, PostgreSQL runs each statement in its own
        autocommit transaction: no BEGIN and no ROLLBACK round trip, which
        suits the common single-statement read (a compiled GraphQL query).
        ``work`` must have no effect besides its result, since it may run twice.
        """
        for attempt in (1, 2):
            try:
                if snapshot or self.dialect != "postgresql":
                    with self.read() as conn:
                        return work(conn)
                with self.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("a pooled database connection was dead; retrying on a new one")
        raise AssertionError("unreachable")

    def driver_arguments(self) -> dict[str, Any]:
        """psycopg's connect arguments for this PostgreSQL database, as the engine's own.

        The same host, credentials, session settings and type adapters, so a
        connection opened with them (:mod:`loop_reads`) reads what the engine reads.
        """
        _, arguments = self.engine.dialect.create_connect_args(self.engine.url)
        return {**arguments, **_session_options(self.url)}

    def dispose(self) -> None:
        self.engine.dispose()


#: Permission bits of files holding data or secrets: the owner alone reads and writes them.
PRIVATE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create an empty SQLite database file at ``path`` with mode 0600, if there is none.

    SQLite would create it with the umask's mode (0644 usually), readable by
    every local user, and gives its -wal and -shm files the database file's
    mode: creating the file first keeps all three private. An existing file is
    left as it is (``qiao doctor`` warns about a loose mode).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE)
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        return  # there already, or a folder SQLite will name in its own error
    os.fchmod(fd, PRIVATE_MODE)
    os.close(fd)


def _make_engine(
    url: str, sqlite_functions: Mapping[str, Callable[..., Any]], **options: Any
) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        _configure_sqlite(engine, sqlite_functions)
        return engine
    engine = create_engine(
        make_url(url).difference_update_query(["options"]),
        connect_args=_session_options(url),
        **options,
    )
    event.listen(engine, "checkout", _refuse_closed)
    return engine


def _session_options(url: str) -> dict[str, str]:
    """Every PostgreSQL session in UTC, plus the settings of the URL's own ``options``."""
    extra = make_url(url).query.get("options")
    return {"options": " ".join(["-c timezone=UTC", *([extra] if extra else [])])}


@contextmanager
def planned_per_run(conn: Connection) -> Iterator[None]:
    """Run ``conn``'s statements unprepared, so PostgreSQL plans each for its values.

    psycopg prepares a statement it has run five times, and PostgreSQL may then
    plan it once for every parameter value. For a read whose rows are chosen by
    a key (an account's activities) that generic plan is an average account's,
    which for a large account of skewed data walks the wrong index (one account
    holding 2 % of all activities: p95 366 ms, against about a millisecond planned
    for its values). Unprepared,
    the statement is parsed and planned for its own values each time; everything
    else keeps its cached plan. Nothing changes on SQLite.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    saved = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = saved


def _refuse_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Make the pool replace a connection the server has closed, with no round trip.

    Raising DisconnectionError here makes SQLAlchemy's pool connect anew.
    """
    if server_closed(dbapi_conn):
        raise DisconnectionError("the database server closed this connection")


def server_closed(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server has ended this idle connection, seen without a round trip.

    An idle PostgreSQL connection receives nothing unless the server ends it
    (a terminated backend, a restart) or sends a rare notice; either way its
    socket turns readable, and a fresh connection is the safe answer.
    """
    try:
        socket = connection.pgconn.socket
    except psycopg.OperationalError:  # libpq has closed it already
        return True
    poller = select.poll()
    poller.register(socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _configure_sqlite(engine: Engine, functions: Mapping[str, Callable[..., Any]]) -> None:
    """Hand transaction control to SQLAlchemy so DDL is transactional and writers queue,
    and give every connection ``functions`` (deterministic; any number of arguments)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        for name, function in functions.items():
            dbapi_conn.create_function(name, -1, function, deterministic=True)
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
