"""A deployment's running state: configuration, database, plugins, metadata, records.

Every process (API server, worker, CLI command, test) builds one
:class:`Runtime`. It owns the current :class:`~qiao.core.catalog.Catalog` and
replaces it when another process changes the metadata: :meth:`Runtime.current`
re-reads the version at most once per ``metadata_check_interval`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, inspect

from qiao.core import masking
from qiao.core.catalog import Catalog
from qiao.core.config import Config
from qiao.core.encryption import FieldEncryption, KeyStore, check_keys, provider_factory
from qiao.core.encryption.declared import apply_declared, read_declared
from qiao.core.errors import ConfigurationError
from qiao.core.formula.computed import check_computed
from qiao.core.metadata import store
from qiao.core.metadata.registry import Registry
from qiao.core.packages import apply
from qiao.core.packages.apply import Migration
from qiao.core.permissions.access import Access
from qiao.core.pluginmanager import Plugins, create_plugins
from qiao.core.records.context import Actor
from qiao.core.records.host import AuditJournal, ControllableClock
from qiao.core.records.service import Clock, RecordsService, utcnow
from qiao.core.schema import ddl
from qiao.core.storage.database import Database

_T = TypeVar("_T")


class AuditLogs(Protocol):
    """How a runtime gets its audit log: :mod:`qiao.core.audit.log` is one."""

    def bind(self, runtime: Runtime) -> AuditJournal | None: ...

    def bound(self, runtime: Runtime) -> AuditJournal | None: ...


#: Makes a controllable clock from the real one and the database that keeps its offset.
ClockMaker = Callable[[Clock, Database], ControllableClock]
_clock_makers: list[ClockMaker] = []


def register_controllable_clock(make: ClockMaker) -> None:
    """Make the clock of a deployment with ``[clock] controllable = true`` with ``make``.

    The built-in ``clock`` plugin registers its replay clock when it loads, which
    every runtime does before it makes its clock (the plugin cannot be left out).
    """
    _clock_makers[:] = [make]


def _controllable_clock(base: Clock, db: Database) -> ControllableClock:
    if not _clock_makers:
        raise ConfigurationError("the built-in clock plugin is not loaded")
    return _clock_makers[0](base, db)


_audit_logs: list[AuditLogs] = []


def register_audit_logs(logs: AuditLogs) -> None:
    """Make every runtime bind its audit log through ``logs``.

    The built-in ``audit`` plugin registers its log module when it loads, which
    every runtime does before it writes (the plugin cannot be left out).
    """
    _audit_logs[:] = [logs]


def _registered_audit_logs() -> AuditLogs:
    if not _audit_logs:
        raise ConfigurationError("the built-in audit plugin is not loaded")
    return _audit_logs[0]


class Runtime:
    """The live objects of one deployment in one process."""

    def __init__(
        self,
        config: Config,
        *,
        extra_plugins: Sequence[Any] = (),
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.plugins: Plugins = create_plugins(config.plugins, extra_plugins)
        self.db = Database(
            config.database_url,
            config.pool,
            sqlite_functions={masking.SQLITE_FUNCTION: masking.sqlite_mask},
        )
        #: The clock administrators set and advance, where qiao.toml allows it (docs/clock.md).
        self.replay_clock: ControllableClock | None = None
        if config.clock_controllable:
            if config.production:
                raise ConfigurationError(
                    "[clock] controllable is for acceptance and test deployments; "
                    "it is refused with [server] production = true"
                )
            clock = self.replay_clock = _controllable_clock(clock, self.db)
        encryption = FieldEncryption(KeyStore(self.db, provider_factory(config, self.plugins)))
        self.records = RecordsService(self, self.db, self.current, self.plugins, clock, encryption)
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._checked_at = 0.0
        self._started = False
        self._pin = threading.local()
        self._state: dict[str, Any] = {}
        self._audit_bound = False

    # -- Schema -----------------------------------------------------------------------

    def migrate(self, *, demo_of: Iterable[str] = (), dry_run: bool = False) -> Migration:
        """Bring the database to the plugins in one transaction (see qiao.core.packages.apply).

        Kernel tables, entity tables, data migrations, declared records, package
        versions and the demo data of ``demo_of``; with ``dry_run``, all of it is
        done and rolled back, so the plan says exactly what a real run would do.
        """
        self._bind_audit()
        return apply.migrate(self, demo_of=demo_of, dry_run=dry_run)

    def pending(self) -> tuple[bool, ddl.SchemaPlan | None]:
        """Whether kernel migrations are current, and what entity tables lack."""
        with self.db.read() as conn:
            if ddl.kernel_revision(conn) != ddl.kernel_head():
                return False, None
            return True, ddl.plan_entities(conn, self.build_registry(conn))

    def build_registry(self, conn: Connection, *, without: str | None = None) -> Registry:
        """Plugins' entities plus admins' custom metadata, at the database's version.

        The standard fields qiao.toml's ``[encryption] fields`` names are made
        encrypted (core/encryption/declared.py); the file is read again each time.
        ``without`` leaves out what that plugin declares, as the database has it once the
        plugin's tables are dropped (``qiao template uninstall``).
        """
        entities, extensions = self.plugins.entities()
        entities = [e for e in entities if e.source != without]
        extensions = [x for x in extensions if x.source != without]
        declared = read_declared(self.config.path)
        entities = apply_declared(entities, declared)
        self.records.encryption.converting = declared
        custom_entities, custom_fields = store.load_custom(conn)
        registry = Registry.build(
            [*entities, *custom_entities],
            [*extensions, *custom_fields],
            version=store.read_version(conn),
        )
        return check_computed(registry)

    # -- Current metadata ---------------------------------------------------------------

    @contextmanager
    def pinned(self, catalog: Catalog) -> Iterator[Catalog]:
        """Make :meth:`current` answer ``catalog`` in this thread while the block runs.

        A transaction that changes the metadata (a migration, a template install)
        reads and writes records under the new metadata before it commits; other
        threads keep the committed catalog, as their transactions see the
        committed tables.
        """
        before = getattr(self._pin, "catalog", None)
        self._pin.catalog = catalog
        try:
            yield catalog
        finally:
            self._pin.catalog = before

    def current(self) -> Catalog:
        """The catalog of the current metadata version (re-checked at most every interval)."""
        catalog = self.current_cached()
        if catalog is not None:
            return catalog
        now = time.monotonic()
        with self._lock:
            if self._catalog is not None and now - self._checked_at < (
                self.config.metadata_check_interval
            ):
                return self._catalog
            # The check is one autocommit statement: a transaction's ROLLBACK would
            # also make psycopg drop the connection's prepared statements.
            if self._catalog is not None and (
                self.db.run_read(store.read_version) == self._catalog.version
            ):
                self._checked_at = now
                return self._catalog
            with self.db.read() as conn:
                if self._catalog is None and "qiao_metadata_version" not in set(
                    inspect(conn).get_table_names()
                ):
                    raise ConfigurationError("the database is not set up; run 'qiao migrate'")
                registry = self.build_registry(conn)
            self._install(Catalog.of(registry))
            assert self._catalog is not None
            return self._catalog

    def current_cached(self) -> Catalog | None:
        """:meth:`current` if no check of the version is due, else None (no statement run)."""
        pinned: Catalog | None = getattr(self._pin, "catalog", None)
        if pinned is not None:
            return pinned
        catalog = self._catalog
        if catalog is not None and (
            time.monotonic() - self._checked_at < self.config.metadata_check_interval
        ):
            return catalog
        return None

    def install(self, catalog: Catalog) -> None:
        """Adopt ``catalog`` at once (after this process changed the metadata itself)."""
        with self._lock:
            self._install(catalog)

    def _install(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._checked_at = time.monotonic()

    def start(self) -> None:
        """Run the plugins' start-up hooks, once per runtime, before serving anything.

        The API's lifespan, every CLI command and the test fixtures call this,
        so a plugin can rely on its ``qiao_startup`` having run.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
        check_keys(self.records.encryption, self.db, self._catalog)  # a wrong key stops here
        self._bind_audit()
        self.plugins.startup(self)

    def _bind_audit(self) -> None:
        """Attach the deployment's audit log before this runtime writes anything."""
        with self._lock:
            if not self._audit_bound:
                _registered_audit_logs().bind(self)
                self._audit_bound = True

    def audit_log(self) -> AuditJournal | None:
        """The deployment's audit log (bound on first use); None when it has no audit key."""
        self._bind_audit()
        return _registered_audit_logs().bound(self)

    def state(self, key: str, make: Callable[[Runtime], _T]) -> _T:
        """This runtime's one ``key`` object, made by ``make(runtime)`` on first use.

        Where a plugin keeps what belongs to one deployment in one process (a
        cache, a client): it lives and dies with the runtime, so two runtimes in
        one process (tests, embedding programs) never share it. Prefix keys with
        the plugin's name. An object with a ``close()`` method (an HTTP client) is
        closed when the runtime is.
        """
        found: _T | None = self._state.get(key)  # made already: no lock on the hot path
        if found is not None:
            return found
        with self._lock:
            if key not in self._state:
                self._state[key] = make(self)
            made: _T = self._state[key]
            return made

    def access_for(self, actor: Actor) -> Access:
        """What ``actor`` may do, as checks and SQL conditions (cached a few seconds)."""
        return self.records.permissions.access_for(actor)

    @property
    def started(self) -> bool:
        """Whether :meth:`start` ran: plugins are ready and rules may act."""
        return self._started

    def close(self) -> None:
        """Close what plugins keep in :meth:`state` (objects with ``close()``), then the pool."""
        with self._lock:
            kept, self._state = list(self._state.values()), {}
        for value in kept:
            close = getattr(value, "close", None)
            if callable(close):
                close()
        self.db.dispose()
