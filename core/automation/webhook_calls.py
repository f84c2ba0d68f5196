"""Rules' webhooks: an ``automation_webhook_call`` record, posted by a worker from its create event.

The action writes the call (URL, secret, body) in the rule's transaction, so
it exists exactly when the rule's other effects do; its create event gets one
delivery to the handler ``automation.webhook``, which posts the body as a
Standard Webhooks 1.0 message signed with the call's secret. The delivery id
is the ``webhook-id``, the same on every retry, so receivers drop duplicates.
Failures retry with the worker's back-off and jitter; 429 and 503 honour
Retry-After; a URL that answered 410 Gone receives nothing more from any rule.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from qiao.core import outbound
from qiao.core.events import signing
from qiao.core.events.model import Delivery, EventHandler, GiveUp, RetryLater
from qiao.core.events.webhooks import WebhookFailed, retry_after
from qiao.core.records.context import Actor, Source

HANDLER = "automation.webhook"
#: Seconds to wait for a receiver.
TIMEOUT = 10.0


def handlers() -> list[EventHandler]:
    return [
        EventHandler(HANDLER, send, entities=("automation_webhook_call",), operations=("create",))
    ]


def send(delivery: Delivery) -> None:
    runtime = delivery.runtime
    calls = runtime.current().table("automation_webhook_call")
    with runtime.db.read() as conn:
        call = conn.execute(select(calls).where(calls.c.id == delivery.event.record_id)).first()
        gone = call is not None and (
            conn.execute(
                select(calls.c.id).where(calls.c.url == call.url, calls.c.status == "GONE").limit(1)
            ).first()
            is not None
        )
    if call is None:
        raise GiveUp("the webhook call was deleted")
    if gone:
        _record(delivery, "GONE", None)
        raise GiveUp(f"{call.url} answered 410 Gone before; nothing more is sent to it")
    now = runtime.records.clock()
    payload = json.dumps(call.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = signing.headers(call.secret, delivery.id, int(now.timestamp()), payload)
    headers["content-type"] = "application/json"
    with outbound.client(timeout=TIMEOUT, follow_redirects=False) as client:
        response = client.post(call.url, content=payload, headers=headers)
    status = response.status_code
    if 200 <= status < 300:
        _record(delivery, "SENT", status)
        return
    if status == 410:
        _record(delivery, "GONE", status)
        raise GiveUp(f"{call.url} answered 410 Gone; nothing more is sent to it")
    if status in {429, 503}:
        wait = retry_after(response.headers.get("retry-after"), now)
        if wait is not None:
            raise RetryLater(f"HTTP {status} from {call.url}", wait)
    raise WebhookFailed(f"HTTP {status} from {call.url}")


def _record(delivery: Delivery, status: str, response_status: int | None) -> None:
    """Note the outcome on the call."""
    records = delivery.runtime.records
    request_id = delivery.id.replace("-", "")
    with records.transaction(Actor.system(), Source.AUTOMATION, request_id) as ctx:
        records.update(
            ctx,
            "automation_webhook_call",
            delivery.event.record_id,
            {"status": status, "response_status": response_status},
        )
