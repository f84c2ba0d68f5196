"""Fixtures of the connector tests: a movable clock whose sleep advances it, and a sink;
for tests inside a deployment, the connectors plugin enabled and fakes on its clock.

Connectors sleep through the injected ``sleep``; here it moves the clock instead, so
back-off, Retry-After and token expiry run instantly and every wait is recorded.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from qiao.core import outbound
from qiao.core.testing.clock import TestClock
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord

from .fakes.dingtalk import FakeDingTalk
from .fakes.kingdee import FakeKingdee
from .fakes.sap import FakeSap
from .fakes.wecom import FakeWeCom
from .fakes.yonyou import FakeYonyou


class FakeTime:
    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (``host:port``), one per test module."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def calls() -> list[CallRecord]:
    return []


@pytest.fixture
def wiring(fake_time: FakeTime, calls: list[CallRecord]) -> Wiring:
    return Wiring(
        sink=calls.append, clock=fake_time.clock, sleep=fake_time.sleep, rng=random.Random(7)
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with outbound.client(timeout=10) as client:
        yield client


def statuses(records: list[CallRecord], operation: str) -> list[str]:
    """``status`` or ``error:<code>`` of each recorded attempt at ``operation``."""
    return [
        r.status if r.status != "error" else f"error:{r.error_code}"
        for r in records
        if r.operation == operation
    ]


# -- Inside a deployment -----------------------------------------------------------------

START = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def qiao_enabled_plugins() -> tuple[str, ...]:
    return ("crm", "connectors")


@pytest.fixture
def clock(qiao_clock: TestClock) -> TestClock:
    qiao_clock.set(START)
    return qiao_clock


def epoch_of(clock: TestClock) -> Any:
    return lambda: clock().timestamp()


@pytest.fixture
def wecom(clock: TestClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(epoch_of(clock)).serve() as fake:
        yield fake


@pytest.fixture
def dingtalk(clock: TestClock) -> Iterator[FakeDingTalk]:
    with FakeDingTalk(epoch_of(clock)).serve() as fake:
        yield fake


@pytest.fixture
def kingdee(clock: TestClock) -> Iterator[FakeKingdee]:
    with FakeKingdee(epoch_of(clock)).serve() as fake:
        yield fake


@pytest.fixture
def yonyou(clock: TestClock) -> Iterator[FakeYonyou]:
    with FakeYonyou(epoch_of(clock)).serve() as fake:
        yield fake


@pytest.fixture
def sap(clock: TestClock) -> Iterator[FakeSap]:
    with FakeSap(epoch_of(clock)).serve() as fake:
        yield fake
