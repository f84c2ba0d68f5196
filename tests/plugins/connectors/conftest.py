"""Fixtures of the connector tests: a movable clock whose sleep advances it, and a sink.

Connectors sleep through the injected ``sleep``; here it moves the clock instead, so
back-off, Retry-After and token expiry run instantly and every wait is recorded.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord


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
    with httpx.Client(timeout=10) as client:
        yield client


def statuses(records: list[CallRecord], operation: str) -> list[str]:
    """``status`` or ``error:<code>`` of each recorded attempt at ``operation``."""
    return [
        r.status if r.status != "error" else f"error:{r.error_code}"
        for r in records
        if r.operation == operation
    ]
