"""Who is acting, through which door, within which transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Connection


class Source(StrEnum):
    """Where a request came from; recorded with every change."""

    GRAPHQL = "graphql"
    CLI = "cli"
    CONNECTOR = "connector"
    AUTOMATION = "automation"
    IMPORT = "import"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """The authenticated caller. ``user_id`` is None for the system itself."""

    user_id: str | None
    username: str
    is_admin: bool = False
    #: Authenticated with a read-only token: queries only.
    read_only: bool = False

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, username="system", is_admin=True)


@dataclass(frozen=True)
class WriteContext:
    """Everything a write (and the hooks around it) needs to know about its caller."""

    actor: Actor
    source: Source
    connection: Connection
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
