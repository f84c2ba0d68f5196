"""Notification channels: plugins that deliver notifications beyond the app (e-mail, WeCom ...).

A plugin offers channels through ``qiao_notification_channels``. Each channel
gets an event handler of its own, ``notify.<name>``, fed by the create events
of ``notification`` records, so every channel retries, backs off and ends in
the dead letters on its own, and one channel's outage never delays another.
The in-app channel is the record itself and needs no handler.
"""

from __future__ import annotations

from qiao.core.events.model import Delivery, EventHandler
from qiao.core.hookspecs import NotificationChannel
from qiao.core.records.context import Actor

HANDLER_PREFIX = "notify."


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
