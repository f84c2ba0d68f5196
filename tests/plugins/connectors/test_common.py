"""The common layer's rules on their own: buckets, pauses, back-off, Retry-After, tokens."""

from __future__ import annotations

import random

import httpx
import pytest

from qiao.plugins.connectors.common.caller import Caller, Wiring
from qiao.plugins.connectors.common.calls import CallRecord, payload_hash
from qiao.plugins.connectors.common.errors import (
    ConnectorError,
    RateLimitedError,
    UnavailableError,
    VendorError,
)
from qiao.plugins.connectors.common.http import retry_after
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.common.replay import MemorySeenKeys
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import MemoryTokenStore, Token, TokenCache

from .conftest import FakeTime


def test_a_bucket_never_lets_more_than_its_count_into_any_window(fake_time: FakeTime) -> None:
    limits = RateLimits(fake_time.clock, fake_time.sleep, [Rate(10, 60)])
    start = fake_time.now
    stamps = []
    for _ in range(40):
        limits.acquire("op")
        stamps.append(fake_time.now - start)
    for first in stamps:
        assert sum(1 for t in stamps if first <= t < first + 60) <= 10
    assert stamps[-1] == pytest.approx((40 - 5) * 60 / 5)  # half the rate, sustained


def test_operations_have_their_own_buckets(fake_time: FakeTime) -> None:
    limits = RateLimits(fake_time.clock, fake_time.sleep, [Rate(2, 10)])
    limits.acquire("a")
    limits.acquire("b")
    assert fake_time.sleeps == []
    limits.acquire("a")
    assert fake_time.sleeps == [pytest.approx(10.0)]


def test_a_wait_handed_back_returns_its_tokens(fake_time: FakeTime) -> None:
    """A host that never sleeps raises instead; retrying after the wait must then pass."""
    waits: list[float] = []

    def hand_back(seconds: float) -> None:
        waits.append(seconds)
        raise RateLimitedError("v", "wait", retry_after=seconds)

    limits = RateLimits(fake_time.clock, hand_back, [Rate(2, 10)])
    limits.acquire("a")
    for _ in range(3):  # retried too early, again and again: the wait does not grow
        with pytest.raises(RateLimitedError):
            limits.acquire("a")
    assert waits == [pytest.approx(10.0)] * 3
    fake_time.advance(waits[-1])
    limits.acquire("a")
    assert len(waits) == 3


def test_a_pause_holds_one_operation_or_all(fake_time: FakeTime) -> None:
    limits = RateLimits(fake_time.clock, fake_time.sleep)
    limits.pause("a", 5)
    limits.acquire("b")
    assert fake_time.sleeps == []
    limits.acquire("a")
    assert fake_time.sleeps == [pytest.approx(5.0)]
    limits.pause(None, 7)
    limits.acquire("b")
    assert fake_time.sleeps[-1] == pytest.approx(7.0)


def test_back_off_grows_with_full_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=1.0, max_delay=8.0, max_wait=60.0)
    rng = random.Random(1)
    busy = UnavailableError("v", "busy")
    for failures, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)]:
        draws = [policy.delay(failures, busy, rng) for _ in range(200)]
        assert all(d is not None and 0 <= d <= cap for d in draws)
        assert max(d for d in draws if d is not None) > cap * 0.8
    assert policy.delay(6, busy, rng) is None
    hinted = RateLimitedError("v", "slow down", retry_after=30)
    wait = policy.delay(1, hinted, rng)
    assert wait is not None and 30 <= wait <= 31
    assert policy.delay(1, RateLimitedError("v", "later", retry_after=3600), rng) is None
    assert policy.delay(1, VendorError("v", "bad request"), rng) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("120"), 0) == 120
    assert retry_after(response("Thu, 01 Jan 2026 00:02:00 GMT"), 1767225600) == 120
    assert retry_after(response("soon"), 0) is None
    assert retry_after(httpx.Response(429), 0) is None


def test_the_payload_hash_ignores_key_order() -> None:
    assert payload_hash({"a": 1, "b": "乙"}) == payload_hash({"b": "乙", "a": 1})
    assert payload_hash(b"x") == payload_hash("x") != payload_hash({"x": None})


def test_expire_leaves_a_newer_token_alone(fake_time: FakeTime) -> None:
    store = MemoryTokenStore()
    fetched = []

    def fetch() -> Token:
        fetched.append(1)
        return Token.issued(f"t{len(fetched)}", fake_time.now, 7200)

    cache = TokenCache(store, "k", fetch, fake_time.clock)
    assert cache.get() == "t1"
    cache.invalidate("t1")
    assert cache.get() == "t2"
    cache.invalidate("t1")
    assert cache.get() == "t2" and len(fetched) == 2


def test_a_short_lived_token_is_reused_for_half_its_life(fake_time: FakeTime) -> None:
    token = Token.issued("t", fake_time.now, 60)
    assert token.refresh_at - fake_time.now == 30
    assert Token.issued("t", 0, 7200).refresh_at == 6900


def test_replays_are_seen_once_within_their_lifetime() -> None:
    seen = MemorySeenKeys(ttl=100)
    assert seen.first("k", 0)
    assert not seen.first("k", 99)
    assert seen.first("k", 200)


def test_every_attempt_is_recorded_and_only_retryable_errors_retried(
    wiring: Wiring, calls: list[CallRecord]
) -> None:
    caller = Caller("v", wiring)
    outcomes: list[ConnectorError | str] = [UnavailableError("v", "busy", code=-1), "done"]

    def attempt(_token: str | None) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, ConnectorError):
            raise outcome
        return outcome

    assert caller.call("op", attempt, payload={"k": 1}) == "done"
    assert [(c.status, c.error_code, c.attempt) for c in calls] == [
        ("error", "-1", 1),
        ("ok", None, 2),
    ]
    assert calls[0].error_type == "UnavailableError" and calls[0].detail == "busy"
    outcomes[:] = [VendorError("v", "bad", code=400)]
    with pytest.raises(VendorError):
        caller.call("op", attempt)
    assert len(calls) == 3
