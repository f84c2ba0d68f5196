"""What handlers see and return: events, deliveries, handler declarations, outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiao.core.host import PluginHost

#: Operations of record events; a fired timer's event has the operation ``timer``.
OPERATIONS = ("create", "update", "delete", "timer")


@dataclass(frozen=True)
class Event:
    """One committed change of a record (or one fired timer), as stored in the outbox.

    ``changes`` maps field names to ``[old, new]`` in the API's JSON form
    (decimals and instants as exact strings), so handlers and webhook receivers
    see the same values a GraphQL client would.
    """

    id: str
    entity: str
    record_id: str
    operation: str
    changes: Mapping[str, list[Any]]
    actor: str
    actor_id: str | None
    source: str
    request_id: str
    created_at: dt.datetime
    timer: str | None = None
    payload: Any = None

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON object (the ``data`` of a webhook body)."""
        return {
            "id": self.id,
            "entity": self.entity,
            "record_id": self.record_id,
            "operation": self.operation,
            "changes": dict(self.changes),
            "timer": self.timer,
            "payload": self.payload,
            "actor": self.actor,
            "actor_id": self.actor_id,
            "source": self.source,
            "request_id": self.request_id,
            "created_at": self.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        }


@dataclass(frozen=True)
class Delivery:
    """One handler's job for one event.

    ``id`` is stable across retries: use it as the idempotency key of any side
    effect (it is the ``webhook-id`` of outbound webhooks), because a delivery
    may run more than once when a worker dies after acting and before recording.
    """

    id: str
    handler: str
    attempt: int
    event: Event
    runtime: PluginHost = field(repr=False)


@dataclass(frozen=True)
class EventHandler:
    """A consumer of events, declared by a plugin through ``qiao_event_handlers``.

    ``entities`` and ``operations`` (empty: all) and ``when`` are checked when an
    event is fanned out, so an event a handler does not want costs it no delivery.
    ``handle`` runs in a worker, after the change committed, outside any
    transaction; it raises to fail the attempt (retried with back-off), raises
    :class:`RetryLater` to pick the time, or :class:`GiveUp` to stop retrying.
    """

    name: str
    handle: Callable[[Delivery], None]
    entities: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    when: Callable[[Event], bool] | None = None

    def wants(self, event: Event) -> bool:
        if self.entities and event.entity not in self.entities:
            return False
        if self.operations and event.operation not in self.operations:
            return False
        return self.when is None or bool(self.when(event))


class RetryLater(Exception):
    """Fail this attempt and retry after ``seconds`` (a receiver's Retry-After, say)."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class GiveUp(Exception):
    """Fail this delivery for good: it goes to the dead letters without more attempts."""
