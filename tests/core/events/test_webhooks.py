"""Outbound webhooks to a real HTTP receiver: signed, retried, throttled, stopped on 410."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qiao.core.events import queue, signing, webhooks
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .receiver import Receiver, receiver
from .support import attempts, deliveries

pytestmark = pytest.mark.storage
SECRET = signing.new_secret()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def add(runtime: Runtime, url: str, entity: str | None = "account") -> str:
    with runtime.db.write() as conn:
        return webhooks.add_endpoint(conn, url, entity, SECRET, runtime.records.clock())


def webhook_rows(runtime: Runtime) -> list[dict[str, Any]]:
    return [r for r in deliveries(runtime) if r["handler"].startswith("webhook:")]


def test_a_delivery_is_signed_to_the_standard_and_carries_the_event(
    runtime: Runtime,
    hook: Receiver,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    add(runtime, hook.url)
    account = write(lambda r, ctx: r.create(ctx, "account", {"name": "华东", "annual_revenue": 5}))
    write(lambda r, ctx: r.create(ctx, "contact", {"name": "not for this endpoint"}))
    drain(make_worker())
    (request,) = hook.requests
    headers = request.headers
    (row,) = webhook_rows(runtime)
    assert headers["webhook-id"] == row["id"]
    timestamp = int(headers["webhook-timestamp"])
    assert timestamp == int(runtime.records.clock().timestamp())
    assert signing.verify(
        SECRET, headers["webhook-id"], timestamp, request.body, headers["webhook-signature"]
    )
    assert headers["content-type"] == "application/json"
    message = json.loads(request.body)
    assert message["type"] == "account.create"
    assert message["data"]["record_id"] == account["id"]
    assert message["data"]["changes"]["annual_revenue"] == [None, "5.00"]
    assert message["timestamp"] == message["data"]["created_at"]
    assert row["status"] == queue.DONE


def test_failures_are_retried_with_back_off_under_the_same_id(
    runtime: Runtime,
    hook: Receiver,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    worker = make_worker()
    drain(worker)  # what happened before the endpoint existed is not sent to it
    add(runtime, hook.url, entity=None)
    hook.script = [(500, {}), (502, {})]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    drain(worker)
    (row,) = webhook_rows(runtime)
    assert row["status"] == queue.PENDING
    assert row["last_error"] == f"WebhookFailed: HTTP 500 from {hook.url}"
    clock.advance(seconds=(row["due_at"] - clock()).total_seconds())
    drain(worker)
    clock.advance(seconds=3600)
    drain(worker)
    assert len(hook.requests) == 3
    assert len(set(hook.ids())) == 1, "webhook-id is stable across retries"
    assert len({r.body for r in hook.requests}) == 1, "so is the body"
    signatures = {r.headers["webhook-signature"] for r in hook.requests}
    assert len(signatures) == 3, "each attempt is signed with its own timestamp"
    outcomes = [(a["outcome"], a["error"]) for a in attempts(runtime, row["id"])]
    assert outcomes == [
        ("error", f"WebhookFailed: HTTP 500 from {hook.url}"),
        ("error", f"WebhookFailed: HTTP 502 from {hook.url}"),
        ("ok", None),
    ]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_or_as_a_date_is_honoured(
    status: int,
    runtime: Runtime,
    hook: Receiver,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    add(runtime, hook.url)
    later = email.utils.format_datetime(clock() + dt.timedelta(seconds=900), usegmt=True)
    hook.script = [(status, {"retry-after": "120"}), (status, {"retry-after": later})]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    worker = make_worker()
    drain(worker)
    (row,) = webhook_rows(runtime)
    assert row["due_at"] == clock() + dt.timedelta(seconds=120)
    clock.advance(seconds=119)
    drain(worker)
    assert len(hook.requests) == 1
    clock.advance(seconds=1)
    drain(worker)
    (row,) = webhook_rows(runtime)
    assert row["due_at"] == clock() + dt.timedelta(seconds=780)
    clock.advance(seconds=780)
    drain(worker)
    assert len(hook.requests) == 3
    assert webhook_rows(runtime)[0]["status"] == queue.DONE


def test_410_gone_disables_the_endpoint_and_stops_its_deliveries(
    runtime: Runtime,
    hook: Receiver,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    endpoint_id = add(runtime, hook.url)
    hook.script = [(410, {})]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    worker = make_worker()
    drain(worker)
    (row,) = webhook_rows(runtime)
    assert row["status"] == queue.DEAD and "410 Gone" in row["last_error"]
    assert row["attempts"] == 1
    with runtime.db.read() as conn:
        (endpoint,) = webhooks.list_endpoints(conn)
    assert (endpoint["id"], endpoint["status"]) == (endpoint_id, webhooks.DISABLED)
    write(lambda r, ctx: r.create(ctx, "account", {"name": "B"}))
    drain(worker)
    assert len(hook.requests) == 1
    assert len(webhook_rows(runtime)) == 1, "a disabled endpoint gets no new deliveries"
    with runtime.db.write() as conn:
        queue.retry(conn, [row["id"]], runtime.records.clock())
    drain(worker)
    (row,) = webhook_rows(runtime)
    assert row["status"] == queue.DEAD and "is disabled" in row["last_error"]
    assert len(hook.requests) == 1


def test_an_unreachable_receiver_is_a_failed_attempt(
    runtime: Runtime, make_worker: Callable[..., Worker], write: Callable[..., Any]
) -> None:
    add(runtime, "http://127.0.0.1:9/nothing-listens-here")
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    drain(make_worker())
    (row,) = webhook_rows(runtime)
    assert row["status"] == queue.PENDING
    assert row["last_error"].startswith("ConnectError")


def test_endpoints_refuse_bad_urls_and_secrets(runtime: Runtime) -> None:
    with runtime.db.write() as conn, pytest.raises(ValueError, match="not an http"):
        webhooks.add_endpoint(conn, "ftp://x", None, SECRET, runtime.records.clock())
    with runtime.db.write() as conn, pytest.raises(ValueError, match="whsec_"):
        webhooks.add_endpoint(conn, "https://x.example", None, "s3cret", runtime.records.clock())
