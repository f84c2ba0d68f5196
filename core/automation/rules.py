"""Active rules, checked once per process and kept until a rule changes.

Every event, every write of an entity with time-based rules and every fired
timer asks which rules apply; reading and type-checking them each time would
cost more than the actions. The cache re-reads the rules when a cheap
fingerprint of the ``automation_rule`` table (count, latest change, sum of
versions) differs, checked at most once per ``metadata.check_interval``
seconds (once a second at most when events are fanned out), or at once after
a rule was written in this process. A stored rule that no longer checks (a
field it names was removed) is left out and logged. A cache keeps only a weak
reference to its runtime, so a closed runtime is not held alive.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, func, select

from qiao.core.automation.definitions import EVENT_KINDS, RuleDefinition, check_rule
from qiao.core.errors import QiaoError

if TYPE_CHECKING:
    from qiao.core.catalog import Catalog
    from qiao.core.records.host import RecordsHost
    from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.automation")


@dataclass(frozen=True)
class Rule:
    """An active rule, checked against the catalog it was loaded with."""

    id: str
    name: str
    definition: RuleDefinition

    @property
    def entity(self) -> str:
        return self.definition.entity

    @property
    def kind(self) -> str:
        return self.definition.trigger.kind


@dataclass(frozen=True)
class RuleSet:
    """The active rules of one database at one fingerprint."""

    rules: tuple[Rule, ...] = ()

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def on_events(self, entity: str) -> list[Rule]:
        return [r for r in self.rules if r.entity == entity and r.kind in EVENT_KINDS]

    def timed(self, entity: str) -> list[Rule]:
        return [r for r in self.rules if r.entity == entity and r.kind in {"after", "before"}]

    @property
    def event_entities(self) -> frozenset[str]:
        return frozenset(r.entity for r in self.rules if r.kind in EVENT_KINDS)


class RuleCache:
    """The rules of one runtime's database (see the module's docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = weakref.ref(runtime)
        self.closed = False
        event.listen(runtime.db.engine, "engine_disposed", self._close)
        self._lock = threading.Lock()
        self._rules = RuleSet()
        self._fingerprint: tuple[Any, ...] | None = None
        self._catalog_version: int | None = None
        self._checked_at = 0.0

    def _close(self, _engine: Any) -> None:
        """The runtime was closed: its database is no business of this process any more."""
        self.closed = True

    def forget(self) -> None:
        """Re-check the table on next use (a rule was written in this process)."""
        self._checked_at = 0.0

    @property
    def runtime(self) -> Runtime | None:
        return self._runtime()

    def get(self, conn: Connection | None = None, *, min_age: float = 0.0) -> RuleSet:
        """The active rules, re-checked once older than the interval (and ``min_age``)."""
        runtime = self.runtime
        if runtime is None or self.closed:
            return RuleSet()
        interval = max(runtime.config.metadata_check_interval, min_age)
        if self._fingerprint is not None and time.monotonic() - self._checked_at < interval:
            return self._rules
        with self._lock:
            catalog = runtime.current()
            if conn is None:
                with runtime.db.read() as read:
                    return self._refresh(read, catalog)
            return self._refresh(conn, catalog)

    def _refresh(self, conn: Connection, catalog: Catalog) -> RuleSet:
        table = catalog.table("automation_rule")
        fingerprint = tuple(
            conn.execute(
                select(func.count(), func.max(table.c.updated_at), func.sum(table.c.version))
            ).one()
        )
        if fingerprint != self._fingerprint or catalog.version != self._catalog_version:
            rows = conn.execute(
                select(table).where(table.c.active.is_(True)).order_by(table.c.name)
            )
            self._rules = RuleSet(tuple(load(conn, catalog, [dict(r._mapping) for r in rows])))
            self._fingerprint = fingerprint
            self._catalog_version = catalog.version
        self._checked_at = time.monotonic()
        return self._rules


def load(conn: Connection, catalog: Catalog, rows: Sequence[dict[str, Any]]) -> list[Rule]:
    """Check stored rules; one that fails is logged and left out."""
    roles = role_names(conn, catalog)
    rules = []
    for row in rows:
        try:
            definition = check_rule(
                catalog,
                row["entity"],
                row["trigger"],
                row["condition"],
                row["actions"],
                roles.__contains__,
            )
        except QiaoError as exc:
            log.warning("automation rule %r is left out: %s", row["name"], exc.message)
            continue
        rules.append(Rule(row["id"], row["name"], definition))
    return rules


def role_names(conn: Connection, catalog: Catalog) -> set[str]:
    roles = catalog.table("role")
    return {name for (name,) in conn.execute(select(roles.c.name))}


def rules_of(runtime: RecordsHost) -> RuleCache:
    """The rule cache of ``runtime`` (one per runtime, made on first use)."""
    return runtime.state("automation.rules", RuleCache)
