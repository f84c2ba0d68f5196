"""Notification channels: plugins that deliver notifications beyond the app (e-mail, WeCom ...).

A plugin offers channels through ``qiao_notification_channels``. Each channel
gets an event handler of its own, ``notify.<name>``, fed by the create events
of ``notification`` records, so every channel retries, backs off and ends in
the dead letters on its own, and one channel's outage never delays another.
The in-app channel is the record itself and needs no handler.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from qiao.core.events.model import Delivery, EventHandler
from qiao.core.records.context import Actor
from qiao.core.records.service import Record

HANDLER_PREFIX = "notify."


@runtime_checkable
class NotificationChannel(Protocol):
    """A way to reach people. ``send`` runs in a worker, after the notification committed.

    ``delivery.id`` is stable across retries: pass it to the provider as the
    idempotency key (or remember it), because a worker that dies after sending
    and before recording the outcome sends again. Raise to retry with back-off,
    :class:`~qiao.core.events.model.RetryLater` to pick the time, or
    :class:`~qiao.core.events.model.GiveUp` to stop.
    """

    name: str

    def send(self, delivery: Delivery, notification: Record) -> None: ...


def channel_handler(channel: NotificationChannel) -> EventHandler:
    """The event handler that runs ``channel`` for each new notification."""

    def handle(delivery: Delivery) -> None:
        records = delivery.runtime.records
        with delivery.runtime.db.read() as conn:
            notification = records.get(
                conn, "notification", delivery.event.record_id, actor=Actor.system()
            )
        if notification is not None:  # deleted before it could be sent: nothing to say
            channel.send(delivery, notification)

    return EventHandler(
        HANDLER_PREFIX + channel.name,
        handle,
        entities=("notification",),
        operations=("create",),
    )
