"""Outbound webhooks: endpoints stored as data, and the handler that calls them.

Each active endpoint is a handler named ``webhook:<endpoint id>``; an event
for its entity (or for every entity when it names none) gets one delivery per
endpoint, so each endpoint retries, waits and fails on its own. The delivery id
is the ``webhook-id``: the same on every retry, so receivers drop duplicates.
An endpoint that answers 410 Gone is disabled and receives nothing more.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, select, update

from qiao.core import outbound
from qiao.core.events import signing
from qiao.core.events.model import Delivery, GiveUp, RetryLater
from qiao.core.ids import new_id
from qiao.core.storage.system import webhook_endpoint as endpoint_table

HANDLER_PREFIX = "webhook:"
ACTIVE = "active"
DISABLED = "disabled"
#: A Retry-After longer than this is taken as this: a day is long enough to wait.
MAX_RETRY_AFTER = 86_400.0


class WebhookFailed(Exception):
    """The receiver answered with an error status (retried with back-off)."""


def handler_name(endpoint_id: str) -> str:
    return HANDLER_PREFIX + endpoint_id


def add_endpoint(
    conn: Connection, url: str, entity: str | None, secret: str, now: dt.datetime
) -> str:
    """Store an active endpoint; returns its id. ValueError for a bad URL or secret."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    signing.secret_key(secret)
    endpoint_id = new_id()
    conn.execute(
        insert(endpoint_table).values(
            id=endpoint_id,
            url=url,
            entity=entity,
            secret=secret,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
        )
    )
    return endpoint_id


def list_endpoints(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(endpoint_table).order_by(endpoint_table.c.created_at))
    return [dict(r._mapping) for r in rows]


def active_endpoints(conn: Connection) -> list[dict[str, Any]]:
    e = endpoint_table
    return [dict(r._mapping) for r in conn.execute(select(e).where(e.c.status == ACTIVE))]


def remove_endpoint(conn: Connection, endpoint_id: str) -> bool:
    result = conn.execute(delete(endpoint_table).where(endpoint_table.c.id == endpoint_id))
    return bool(result.rowcount)


def disable_endpoint(conn: Connection, endpoint_id: str, reason: str, now: dt.datetime) -> None:
    conn.execute(
        update(endpoint_table)
        .where(endpoint_table.c.id == endpoint_id)
        .values(status=DISABLED, disabled_reason=reason, updated_at=now)
    )


def body(delivery: Delivery) -> bytes:
    """The message: Standard Webhooks' recommended ``type``/``timestamp``/``data`` shape.

    Built only from the event, so every retry sends the same bytes.
    """
    event = delivery.event
    message = {
        "type": f"{event.entity}.{event.operation}",
        "timestamp": event.as_json()["created_at"],
        "data": event.as_json(),
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


class WebhookSender:
    """Sends webhook deliveries over one pooled HTTP client (one per worker)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.client = outbound.client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def __call__(self, delivery: Delivery) -> None:
        runtime = delivery.runtime
        endpoint_id = delivery.handler.removeprefix(HANDLER_PREFIX)
        with runtime.db.read() as conn:
            row = conn.execute(
                select(endpoint_table).where(endpoint_table.c.id == endpoint_id)
            ).first()
        if row is None:
            raise GiveUp(f"webhook endpoint {endpoint_id} was removed")
        endpoint = row._mapping
        if endpoint["status"] != ACTIVE:
            raise GiveUp(
                f"webhook endpoint {endpoint_id} is disabled: {endpoint['disabled_reason']}"
            )
        now = runtime.records.clock()
        payload = body(delivery)
        headers = signing.headers(endpoint["secret"], delivery.id, int(now.timestamp()), payload)
        headers["content-type"] = "application/json"
        response = self.client.post(endpoint["url"], content=payload, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 410:
            reason = f"{endpoint['url']} answered 410 Gone"
            with runtime.db.write() as conn:
                disable_endpoint(conn, endpoint_id, reason, now)
            raise GiveUp(f"{reason}; the endpoint is disabled")
        if status in {429, 503}:
            wait = retry_after(response.headers.get("retry-after"), now)
            if wait is not None:
                raise RetryLater(f"HTTP {status} from {endpoint['url']}", wait)
        raise WebhookFailed(f"HTTP {status} from {endpoint['url']}")
