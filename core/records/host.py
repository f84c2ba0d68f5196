"""The runtime as the records layer sees it: what writes and their hooks reach through it.

A :class:`~qiao.core.records.context.WriteContext` and the records service hold
the runtime that made them, but the runtime sits above the records layer in the
core's layers. So the records layer names here exactly the part of it that
records code and write hooks use, and :class:`qiao.core.runtime.Runtime` is one.
The audit log and the controllable clock are named here too, as the runtime
hands them out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Connection

if TYPE_CHECKING:
    import pluggy

    from qiao.core.actor import Actor
    from qiao.core.catalog import Catalog
    from qiao.core.metadata.manifest import Manifest
    from qiao.core.metadata.model import EntityDef
    from qiao.core.records.context import Source, WriteContext
    from qiao.core.records.service import RecordsService
    from qiao.core.storage.database import Database

_T = TypeVar("_T")


class AuditJournal(Protocol):
    """The deployment's audit log, as the runtime and its writers use it.

    :class:`qiao.core.audit.log.AuditLog` is one; the audit package sits above the
    records layer, so the writers that append to the log and the runtime that binds
    it name only what they ask of it.
    """

    def create_key(self, conn: Connection) -> str: ...

    def record_writes(
        self,
        context: WriteContext,
        entity: EntityDef,
        operation: str,
        records: Sequence[Mapping[str, Any]],
        changes: Sequence[Mapping[str, tuple[Any, Any]]],
    ) -> None: ...


class ControllableClock(Protocol):
    """A clock administrators set and advance (docs/clock.md).

    :class:`qiao.core.replay.clock.ReplayClock` is one; the replay package sits
    above the runtime and registers its maker with
    :func:`qiao.core.runtime.register_controllable_clock`.
    """

    def __call__(self) -> dt.datetime: ...

    def offset(self) -> dt.timedelta: ...

    def set(self, instant: dt.datetime, actor: Actor, source: Source | str) -> dt.datetime: ...

    def advance(self, step: dt.timedelta, actor: Actor, source: Source | str) -> dt.datetime: ...

    def reset(self, actor: Actor, source: Source | str) -> dt.datetime: ...


class HostPlugins(Protocol):
    """The runtime's plugins, as write hooks reach them: names, manifests, hooks.

    :class:`qiao.core.pluginmanager.Plugins` is one.
    """

    @property
    def names(self) -> list[str]: ...

    @property
    def hook(self) -> pluggy.HookRelay: ...

    def manifests(self) -> list[tuple[str, Manifest]]: ...


class RecordsHost(Protocol):
    """The runtime that holds the records service, as writes and their hooks use it."""

    @property
    def db(self) -> Database: ...

    @property
    def records(self) -> RecordsService: ...

    @property
    def plugins(self) -> HostPlugins: ...

    @property
    def replay_clock(self) -> ControllableClock | None: ...

    def current(self) -> Catalog: ...

    def audit_log(self) -> AuditJournal | None: ...

    def state(self, key: str, make: Callable[[Any], _T]) -> _T: ...
