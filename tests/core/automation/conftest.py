"""Automation tests: a runtime on the test clock, a worker driven by hand, a fake channel."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.events.model import Delivery
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.worker import Worker

#: Monday 2 March 2026, 09:00 in Shanghai.
START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


class FakeChannel:
    """A notification channel that records what it sends; ``fail`` scripts failures."""

    name = "fake_im"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Record]] = []
        self.fail: list[Exception] = []
        self.lock = threading.Lock()

    def send(self, delivery: Delivery, notification: Record) -> None:
        with self.lock:
            if self.fail:
                raise self.fail.pop(0)
            self.sent.append((delivery.id, notification))


class ChannelPlugin:
    __name__ = "fake_channels"

    def __init__(self) -> None:
        self.channel = FakeChannel()

    @hookimpl
    def qiao_notification_channels(self) -> list[FakeChannel]:
        return [self.channel]


@pytest.fixture(scope="session")
def channel_plugin() -> ChannelPlugin:
    return ChannelPlugin()


@pytest.fixture
def channel(channel_plugin: ChannelPlugin) -> FakeChannel:
    channel_plugin.channel.sent.clear()
    channel_plugin.channel.fail.clear()
    return channel_plugin.channel


@pytest.fixture
def qiao_extra_plugins(channel_plugin: ChannelPlugin) -> Sequence[Any]:
    return (channel_plugin,)


@pytest.fixture(autouse=True)
def clock(qiao_clock: TestClock) -> TestClock:
    qiao_clock.set(START)
    return qiao_clock


@pytest.fixture
def worker(qiao_worker: Worker, clock: TestClock) -> Worker:
    return qiao_worker


@pytest.fixture
def rule(qiao_runtime: Runtime) -> Callable[..., Record]:
    """``rule(name, entity, trigger, actions, condition=None)``: an active rule record."""

    def _rule(
        name: str,
        entity: str,
        trigger: dict[str, Any],
        actions: list[dict[str, Any]],
        condition: str | None = None,
    ) -> Record:
        records = qiao_runtime.records
        values = {
            "name": name,
            "entity": entity,
            "trigger": trigger,
            "actions": actions,
            "condition": condition,
        }
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, "automation_rule", values)

    return _rule


@pytest.fixture
def update(qiao_runtime: Runtime) -> Callable[..., Record]:
    def _update(entity: str, record_id: str, **values: Any) -> Record:
        records = qiao_runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.update(ctx, entity, record_id, values)

    return _update


@pytest.fixture
def rows(qiao_runtime: Runtime) -> Callable[..., list[Record]]:
    """``rows("notification", owner_id=...)``: records by equal values, oldest first."""

    def _rows(entity: str, **where: Any) -> list[Record]:
        with qiao_runtime.db.read() as conn:
            page = qiao_runtime.records.list(
                conn,
                entity,
                filter={k: {"eq": v} for k, v in where.items()},
                order_by=[{"field": "created_at"}],
                first=200,
                actor=Actor.system(),
            )
        return page.records

    return _rows


@pytest.fixture
def grant(
    create: Callable[..., Record], rows: Callable[..., list[Record]]
) -> Callable[[Record, str], None]:
    """Give a user a role by name, creating the role if no plugin ships it."""

    def _grant(user: Record, role: str) -> None:
        found = rows("role", name=role) or [create("role", name=role, rights={"entities": {}})]
        create("role_assignment", user=user["id"], role=found[0]["id"])

    return _grant
