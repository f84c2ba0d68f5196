"""Who is acting, through which door, within which transaction.

:class:`~qiao.core.actor.Actor` lives at the bottom of the core (permissions judge it
too); it is exported here beside the write context that carries it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from qiao.core.actor import Actor

__all__ = ["Actor", "Source", "WriteContext"]

if TYPE_CHECKING:
    from qiao.core.catalog import Catalog
    from qiao.core.records.host import RecordsHost
    from qiao.core.records.service import RecordsService


class Source(StrEnum):
    """Where a request came from; recorded with every change."""

    GRAPHQL = "graphql"
    CLI = "cli"
    CONNECTOR = "connector"
    AUTOMATION = "automation"
    IMPORT = "import"
    SYSTEM = "system"
    #: A public intake form (docs/intake.md), written as the form's declared actor.
    INTAKE = "intake"
    #: Lawful erasure and retention (docs/privacy.md): the audit log and the outbox
    #: record which fields changed, never their values.
    ERASURE = "erasure"


@dataclass(frozen=True)
class WriteContext:
    """Everything a write (and the hooks around it) needs: who, through which door, where.

    Made by :meth:`RecordsService.transaction`; the write hooks receive it, so
    a plugin reaches the records service, the runtime and its clock from the
    write itself, never through a process-global lookup.
    """

    actor: Actor
    source: Source
    connection: Connection
    runtime: RecordsHost
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def records(self) -> RecordsService:
        """The records service, for further reads and writes in this transaction."""
        return self.runtime.records

    @property
    def catalog(self) -> Catalog:
        """The metadata the write runs against."""
        return self.runtime.current()

    def now(self) -> dt.datetime:
        """The runtime's clock (a test or replay clock where one is set)."""
        return self.runtime.records.clock()

    def as_actor(self, actor: Actor) -> WriteContext:
        """The same transaction and request, acting as ``actor`` (the system, an approver)."""
        return replace(self, actor=actor)
