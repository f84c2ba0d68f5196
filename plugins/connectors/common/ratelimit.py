"""Client-side rate limits: token buckets per API, and pauses the vendor asks for.

Vendors publish limits per API and account (WeCom: 10,000 calls a minute and 150,000 an
hour per API per corp); going over them gets calls refused or, worse, dropped. Each
operation gets its own buckets, one per published window, and a caller takes one token
from each before calling, sleeping until the bucket refills.

Vendors count in fixed windows, and a bucket holding ``count`` tokens refilled at
``count`` per period could pass twice ``count`` across a window's edge. So a bucket for
"``count`` per ``seconds``" holds half the count and refills the other half over the
period: no window of that length ever sees more than ``count`` calls, at the price of
half the sustained throughput, which is far above what a CRM sends. When the vendor still
answers "too fast" (or names a Retry-After), :meth:`RateLimits.pause` holds that
operation, or all of them, until the time has passed.

Buckets reserve in order: a token taken on credit makes the bucket negative and its
caller sleeps for the debt, so concurrent callers are served first come, first served
without polling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from qiao.plugins.connectors.common.tokens import Clock

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Rate:
    """At most ``count`` calls per ``seconds``."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.seconds <= 0:
            raise ValueError("a rate needs a positive count and period")


class TokenBucket:
    """At most ``rate.count`` calls in any window of ``rate.seconds`` (see the module)."""

    def __init__(self, rate: Rate, now: float) -> None:
        self._capacity = float(-(-rate.count // 2))
        self._per_second = max(rate.count - self._capacity, 1.0) / rate.seconds
        self._tokens = self._capacity
        self._updated = now

    def reserve(self, now: float) -> float:
        """Take one token; return how long to wait before using it (0 when available)."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._per_second)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self._per_second

    def refund(self) -> None:
        """Give back a token :meth:`reserve` took for a call that was not made."""
        self._tokens = min(self._capacity, self._tokens + 1.0)


class RateLimits:
    """The buckets and pauses of one vendor account.

    ``default`` rates apply to every operation not named in ``per_operation``; an
    operation with no rates is only held by pauses.
    """

    def __init__(
        self,
        clock: Clock,
        sleep: Sleep,
        default: Sequence[Rate] = (),
        per_operation: Mapping[str, Sequence[Rate]] | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._default = tuple(default)
        self._per_operation = dict(per_operation or {})
        self._buckets: dict[str, list[TokenBucket]] = {}
        self._paused_until: dict[str | None, float] = {}
        self._lock = threading.Lock()

    def acquire(self, operation: str) -> None:
        """Wait until ``operation`` may be called, then count the call."""
        while True:
            with self._lock:
                now = self._clock()
                held = max(
                    self._paused_until.get(operation, 0.0), self._paused_until.get(None, 0.0)
                )
                if held <= now:
                    buckets = self._buckets_of(operation, now)
                    wait = max((bucket.reserve(now) for bucket in buckets), default=0.0)
                    break
            self._sleep(held - now)
        if wait > 0:
            try:
                self._sleep(wait)
            except BaseException:
                # The wait was not taken (a host that never sleeps hands it to a queue):
                # the call is not made now, so its tokens go back, or every retry would
                # push the next one further out.
                with self._lock:
                    for bucket in buckets:
                        bucket.refund()
                raise

    def pause(self, operation: str | None, seconds: float) -> None:
        """Hold ``operation`` (every operation when ``None``) for ``seconds`` from now."""
        with self._lock:
            until = self._clock() + seconds
            self._paused_until[operation] = max(self._paused_until.get(operation, 0.0), until)

    def _buckets_of(self, operation: str, now: float) -> list[TokenBucket]:
        buckets = self._buckets.get(operation)
        if buckets is None:
            rates = self._per_operation.get(operation, self._default)
            buckets = self._buckets[operation] = [TokenBucket(rate, now) for rate in rates]
        return buckets
