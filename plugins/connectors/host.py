"""What the connectors plugin injects into the protocol clients inside a deployment.

The protocol packages take their token store, call sink, clock and sleep by injection
(:class:`~qiao.plugins.connectors.common.caller.Wiring`). Here they are Qiao's: tokens
live in ``connector_token`` records (sealed, write-only), so every process of the
deployment reuses one token; each attempt becomes a ``connector_call`` record, the sync
log; time is the runtime's clock. A process in Qiao never sleeps for a vendor: any wait
(a rate limit, a Retry-After) is raised as :class:`RateLimitedError` and handed back to
the outbox as a retry at that time, so a worker thread is never held and a moved test
clock is obeyed.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from qiao.api import Actor, GiveUp, RetryLater, Runtime, Source
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord, payload_hash
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ConnectorError,
    RateLimitedError,
    RecipientsRejectedError,
)
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token

SYSTEM = Actor.system()

#: One quick retry inside a call (a busy answer, a dropped connection); the outbox retries
#: the rest with its own back-off, so no thread waits long.
IN_CALL_RETRY = RetryPolicy(max_retries=1, base_delay=0.05, max_delay=0.2, max_wait=0.0)

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

STATUS = {"ok": "OK", "partial": "PARTIAL", "error": "ERROR"}


def epoch(runtime: Runtime) -> float:
    """The runtime's clock in epoch seconds, as the protocol layers count time."""
    return runtime.records.clock().timestamp()


def never_wait(vendor: str) -> Any:
    """A ``sleep`` that hands every wait back to the caller as a rate limit."""

    def sleep(seconds: float) -> None:
        if seconds > 0:
            raise RateLimitedError(vendor, "waiting for the vendor's limit", retry_after=seconds)

    return sleep


class RecordTokenStore:
    """A :class:`~.common.tokens.TokenStore` on ``connector_token`` records."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _find(self, conn: Any, key: str) -> dict[str, Any] | None:
        page = self.runtime.records.list(
            conn, "connector_token", filter={"key": {"eq": key}}, first=1, actor=SYSTEM
        )
        return dict(page.records[0]) if page.records else None

    def get(self, key: str) -> Token | None:
        with self.runtime.db.read() as conn:
            row = self._find(conn, key)
        if row is None or not row.get("value"):
            return None
        return Token(str(row["value"]), float(row["expires_at"]), float(row["refresh_at"]))

    def put(self, key: str, token: Token) -> None:
        records = self.runtime.records
        with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
            records.upsert(
                ctx,
                "connector_token",
                "key",
                {
                    "key": key,
                    "value": token.value,
                    "expires_at": decimal.Decimal(f"{token.expires_at:.3f}"),
                    "refresh_at": decimal.Decimal(f"{token.refresh_at:.3f}"),
                },
            )

    def expire(self, key: str, value: str) -> None:
        records = self.runtime.records
        with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
            row = self._find(ctx.connection, key)
            if row is not None and row.get("value") == value:
                records.update(ctx, "connector_token", row["id"], {"value": None})


def write_calls(runtime: Runtime, connector_id: str, calls: list[CallRecord]) -> None:
    """Store call records as ``connector_call`` records, in one transaction."""
    if not calls:
        return
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        for call in calls:
            records.create(
                ctx,
                "connector_call",
                {
                    "connector": connector_id,
                    "direction": "OUT",
                    "operation": call.operation,
                    "status": STATUS[call.status],
                    "at": dt.datetime.fromtimestamp(call.at, dt.UTC),
                    "latency_ms": decimal.Decimal(f"{call.latency_ms:.3f}"),
                    "attempt": call.attempt,
                    "error_code": call.error_code,
                    "error_type": call.error_type,
                    "detail": call.detail,
                    "payload_sha256": call.payload_sha256,
                },
            )


@contextmanager
def wired(runtime: Runtime, connector_id: str, vendor: str) -> Iterator[Wiring]:
    """A wiring for one piece of work; its call records are stored when it ends, failed or not."""
    calls: list[CallRecord] = []
    try:
        yield Wiring(
            sink=calls.append,
            tokens=RecordTokenStore(runtime),
            clock=lambda: epoch(runtime),
            sleep=never_wait(vendor),
        )
    finally:
        write_calls(runtime, connector_id, calls)


def limits(runtime: Runtime, connector: Any, rates: tuple[Rate, ...]) -> RateLimits:
    """The rate buckets of one connector in this process, kept across pieces of work."""
    return runtime.state(
        f"connectors.limits.{connector.id}",
        lambda rt: RateLimits(lambda: epoch(rt), never_wait(connector.vendor), rates),
    )


def http_client(
    runtime: Runtime, connector_id: str, auth: tuple[str, str] | None = None
) -> httpx.Client:
    """This process's HTTP client for one connector: pooled connections, and its own cookie
    jar, since some vendors (Kingdee, SAP's CSRF token) bind a session to cookies. With
    ``auth`` (HTTP basic), a changed password gets a client of its own."""
    key = f"connectors.http.{connector_id}"
    if auth is not None:
        key += "." + payload_hash(list(auth))[:16]
    return runtime.state(key, lambda _rt: httpx.Client(timeout=HTTP_TIMEOUT, auth=auth))


def outbox_error(error: ConnectorError) -> Exception:
    """What a worker's handler raises for a vendor's error: when and whether to retry."""
    if isinstance(error, RecipientsRejectedError):
        return GiveUp(str(error))
    if isinstance(error, RateLimitedError):
        return RetryLater(str(error), max(error.retry_after or 60.0, 1.0))
    if isinstance(error, AuthenticationError):
        return RetryLater(f"{error} (check the connector's settings)", 600.0)
    return error
