"""One logical vendor call run as attempts: rate limit, record, refresh, back off, retry.

Every connector sends its requests through :meth:`Caller.call`, so the rules are the same
for all vendors: each attempt first waits for the operation's rate limit, each attempt's
outcome becomes a :class:`~.calls.CallRecord`, an invalid token is refreshed once and the
call retried once, and retryable errors are retried with back-off until the policy says
stop. A write that may already have reached the vendor (``idempotent=False`` and an error
with ``maybe_processed``) is not retried here: repeating it could send a message twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from qiao.plugins.connectors.common.calls import (
    CallRecord,
    CallSink,
    Status,
    discard,
    payload_hash,
)
from qiao.plugins.connectors.common.errors import (
    ConnectorError,
    RateLimitedError,
    TokenInvalidError,
    UnavailableError,
)
from qiao.plugins.connectors.common.ratelimit import RateLimits, Sleep
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Clock, MemoryTokenStore, TokenCache, TokenStore

T = TypeVar("T")

DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Wiring:
    """What the host process injects into every connector.

    ``sink`` receives call records, ``tokens`` stores access tokens (shared between
    processes when backed by the database), ``clock`` and ``sleep`` are the time source and
    the way to wait, and ``rng`` draws the back-off jitter.
    """

    sink: CallSink = discard
    tokens: TokenStore = field(default_factory=MemoryTokenStore)
    clock: Clock = time.time
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)


class Caller:
    """Runs a vendor's calls under its retry policy and rate limits."""

    def __init__(
        self,
        vendor: str,
        wiring: Wiring,
        *,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.vendor = vendor
        self.wiring = wiring
        self.retry = retry or RetryPolicy()
        self.limits = limits or RateLimits(wiring.clock, wiring.sleep)

    def call(
        self,
        operation: str,
        attempt: Callable[[str | None], T],
        *,
        payload: object = None,
        tokens: TokenCache | None = None,
        idempotent: bool = True,
        partial: Callable[[T], str | None] | None = None,
    ) -> T:
        """The result of ``attempt(token)``, after as many attempts as the rules allow.

        ``attempt`` receives the current token (``None`` without ``tokens``) and raises a
        :class:`ConnectorError` on failure. ``partial`` names what was left undone in a
        successful result (e.g. invalid recipients); such an attempt is recorded as
        ``partial`` rather than ``ok``.
        """
        digest = payload_hash(payload)
        refreshed = False
        failures = 0
        number = 0
        while True:
            number += 1
            token = tokens.get() if tokens is not None else None
            self.limits.acquire(operation)
            started = time.perf_counter()
            try:
                result = attempt(token)
            except ConnectorError as error:
                self._record(operation, number, started, digest, error=error)
                if isinstance(error, TokenInvalidError) and tokens and token and not refreshed:
                    tokens.invalidate(token)
                    refreshed = True
                    continue
                if isinstance(error, RateLimitedError) and error.retry_after is not None:
                    scope = None if error.applies_to_all else operation
                    self.limits.pause(scope, error.retry_after)
                failures += 1
                wait = self.retry.delay(failures, error, self.wiring.rng)
                if wait is None or (not idempotent and _maybe_processed(error)):
                    raise
                self.wiring.sleep(wait)
                continue
            detail = partial(result) if partial is not None else None
            self._record(operation, number, started, digest, detail=detail)
            return result

    def _record(
        self,
        operation: str,
        number: int,
        started: float,
        digest: str,
        *,
        error: ConnectorError | None = None,
        detail: str | None = None,
    ) -> None:
        latency = (time.perf_counter() - started) * 1000
        status: Status
        if error is not None:
            status = "error"
            detail = error.message
        else:
            status = "partial" if detail else "ok"
        self.wiring.sink(
            CallRecord(
                vendor=self.vendor,
                operation=operation,
                status=status,
                latency_ms=round(latency, 3),
                payload_sha256=digest,
                attempt=number,
                at=self.wiring.clock(),
                error_code=error.code if error is not None else None,
                error_type=type(error).__name__ if error is not None else None,
                detail=detail[:DETAIL_LIMIT] if detail else None,
            )
        )


def _maybe_processed(error: ConnectorError) -> bool:
    return isinstance(error, UnavailableError) and error.maybe_processed
