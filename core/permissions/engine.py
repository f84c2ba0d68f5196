"""Access per caller, cached briefly so a request costs no extra queries.

A role change, a new team member or a new manager reaches every process within
:data:`CACHE_SECONDS` (like a revoked token); the metadata version is part of
the key, so a schema change takes effect at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qiao.core.actor import Actor
from qiao.core.catalog import Catalog
from qiao.core.permissions.access import Access
from qiao.core.permissions.hiding import Hiding, load_hiding
from qiao.core.permissions.subject import load_subject
from qiao.core.storage.database import Database

CACHE_SECONDS = 5.0


class Permissions:
    """Builds and caches each caller's :class:`Access`."""

    def __init__(self, db: Database, catalog: Callable[[], Catalog]) -> None:
        self.db = db
        self.catalog = catalog
        self._cache: dict[tuple[str, int], tuple[float, Access]] = {}
        self._lock = threading.Lock()
        self._hiding: tuple[float, int, Hiding] | None = None

    def access_for(self, actor: Actor) -> Access:
        catalog = self.catalog()
        access = self.cached_access(actor, catalog)
        if access is not None:
            return access
        assert actor.user_id is not None
        key = (actor.user_id, catalog.version)
        now = time.monotonic()
        with self.db.read() as conn:
            access = Access(catalog, load_subject(conn, catalog, actor))
            if self._hiding is None or now - self._hiding[0] >= CACHE_SECONDS:
                self._hiding = (now, catalog.version, load_hiding(conn, catalog))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, access)
        return access

    def cached_access(self, actor: Actor, catalog: Catalog) -> Access | None:
        """The caller's access at ``catalog`` if it is at hand without a statement, else None.

        For work that must not wait on the database (a read awaited in the event loop).
        """
        if actor.is_admin or actor.user_id is None:
            return Access.unrestricted(catalog)
        cached = self._cache.get((actor.user_id, catalog.version))
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        return None

    def hiding(self, catalog: Catalog) -> Hiding:
        """What the roles can hide (the GraphQL schema's nullability).

        Read once per metadata version and after :meth:`forget`; otherwise
        refreshed together with a rule-bound caller's access, the readers it
        matters to, so an unrestricted request never costs a statement for it.
        """
        cached = self.cached_hiding(catalog)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            hiding = load_hiding(conn, catalog)
        self._hiding = (time.monotonic(), catalog.version, hiding)
        return hiding

    def cached_hiding(self, catalog: Catalog) -> Hiding | None:
        """:meth:`hiding` if it is at hand without a statement, else None."""
        cached = self._hiding
        return cached[2] if cached is not None and cached[1] == catalog.version else None

    def forget(self) -> None:
        """Drop cached access (after roles or assignments changed in this process)."""
        with self._lock:
            self._cache.clear()
            self._hiding = None
