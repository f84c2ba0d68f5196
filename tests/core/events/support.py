"""Helpers of the event tests: a recording plugin and table reads."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import select

from qiao.core.events.model import Delivery, EventHandler
from qiao.core.hookmarkers import hookimpl
from qiao.core.runtime import Runtime
from qiao.core.storage.system import delivery, delivery_attempt

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Recorder:
    """A plugin whose handlers record what they receive; ``fail`` scripts failures."""

    __name__ = "recorder"

    def __init__(self) -> None:
        self.seen: list[Delivery] = []
        self.lock = threading.Lock()
        #: handler name -> exceptions to raise, one per call, before succeeding
        self.fail: dict[str, list[Exception]] = {}

    def handle(self, item: Delivery) -> None:
        with self.lock:
            self.seen.append(item)
            failures = self.fail.get(item.handler)
            if failures:
                raise failures.pop(0)

    def by(self, handler: str) -> list[Delivery]:
        return [d for d in self.seen if d.handler == handler]

    @hookimpl
    def qiao_event_handlers(self) -> list[EventHandler]:
        return [
            EventHandler("all", self.handle),
            EventHandler("accounts", self.handle, entities=("account",)),
            EventHandler("updates", self.handle, operations=("update",)),
            EventHandler(
                "big_accounts",
                self.handle,
                entities=("account",),
                when=lambda e: "employees" in e.changes and (e.changes["employees"][1] or 0) > 100,
            ),
            EventHandler("timers", self.handle, operations=("timer",)),
        ]


def deliveries(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(delivery).order_by(delivery.c.id))]


def delivery_for(runtime: Runtime, handler: str) -> dict[str, Any]:
    """The one delivery to ``handler`` (the test fails if there are several)."""
    (row,) = [r for r in deliveries(runtime) if r["handler"] == handler]
    return row


def attempts(runtime: Runtime, delivery_id: str) -> list[dict[str, Any]]:
    a = delivery_attempt
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.number, a.c.started_at)
        )
        return [dict(r._mapping) for r in rows]
