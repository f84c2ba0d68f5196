"""A rule's webhook action: a signed Standard Webhooks message, retried, stopped by 410 Gone."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qiao.core.events import signing
from qiao.core.records.service import Record
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

pytestmark = pytest.mark.storage
SECRET = signing.new_secret()


@dataclass
class Hook:
    """Records each request; answers from ``script`` (status, headers) in order, then 200."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    async def receive(request: Request) -> Response:
        state.requests.append((dict(request.headers), await request.body()))
        status, headers = state.script.pop(0) if state.script else (200, {})
        return Response(status_code=status, headers=headers)

    with LiveServer(Starlette(routes=[Route("/hook", receive, methods=["POST"])])) as server:
        state.url = f"{server.url}/hook"
        yield state


def test_the_message_is_signed_and_retried_after_the_receivers_wait(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    clock: TestClock,
    hook: Hook,
) -> None:
    made = rule(
        "新工单推送 ERP",
        "ticket",
        {"created": {}},
        [{"webhook": {"url": hook.url, "secret": SECRET}}],
    )
    hook.script.append((429, {"retry-after": "120"}))
    ticket = create("ticket", subject="推送", serial_number="SN-9")
    drain(worker)
    assert len(hook.requests) == 1
    clock.advance(seconds=119)
    drain(worker)
    assert len(hook.requests) == 1
    clock.advance(seconds=1)
    drain(worker)
    (first, _), (second, body) = hook.requests
    assert first["webhook-id"] == second["webhook-id"]
    timestamp = int(second["webhook-timestamp"])
    assert signing.verify(
        SECRET, second["webhook-id"], timestamp, body, second["webhook-signature"]
    )
    message = json.loads(body)
    assert message["type"] == "automation.ticket"
    assert message["data"]["rule_id"] == made["id"]
    assert message["data"]["record"]["serial_number"] == "SN-9"
    (call,) = rows("automation_webhook_call", rule_id=made["id"])
    assert (call["status"], call["response_status"]) == ("SENT", 200)
    assert message["data"]["record_id"] == ticket["id"]


def test_an_endpoint_that_answers_410_receives_nothing_more(
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    hook: Hook,
) -> None:
    rule("推送", "ticket", {"created": {}}, [{"webhook": {"url": hook.url, "secret": SECRET}}])
    hook.script.append((410, {}))
    create("ticket", subject="一")
    drain(worker)
    create("ticket", subject="二")
    drain(worker)
    assert len(hook.requests) == 1
    assert sorted(c["status"] for c in rows("automation_webhook_call")) == ["GONE", "GONE"]
