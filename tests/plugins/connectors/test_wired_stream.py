"""DingTalk Stream mode: events over a WebSocket kept as callbacks, acknowledged, deduped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qiao.core.testing.worker import drain
from qiao.plugins.connectors import settings, stream
from qiao.plugins.connectors.common.errors import AuthenticationError
from qiao.plugins.connectors.dingtalk.stream import Frame, Ticket, serve

from .deployment import add_dingtalk, calls
from .fakes.dingtalk import FakeDingTalk

CALLBACKS = (
    "{ connectorCallbacks(orderBy: [{field: KEY}]) "
    "{ edges { node { key kind handled outcome } } } }"
)


def test_events_are_kept_once_acknowledged_and_acted_on_by_the_worker(
    qiao_client: Any, qiao_worker: Any, qiao_runtime: Any, dingtalk: FakeDingTalk
) -> None:
    add_dingtalk(qiao_client, dingtalk)
    joined = dingtalk.event("ev-1", "user_add_org", {"UserId": ["u9"], "CorpId": "ding1"})
    replayed = {**joined, "headers": {**joined["headers"], "messageId": "msg-again"}}
    left = dingtalk.event("ev-2", "user_leave_org", {"UserId": ["u3"]})
    dingtalk.stream_events = [joined, replayed, left]
    connector = settings.by_name(qiao_runtime, "钉钉")
    stream.run(qiao_runtime, connector, stop=lambda: dingtalk.finished >= 1)

    pong, *acks = dingtalk.answers
    assert pong["headers"]["messageId"] == "ping-1"
    assert json.loads(pong["data"]) == {"opaque": "p-1"}
    assert [(a["code"], a["headers"]["messageId"]) for a in acks] == [
        (200, joined["headers"]["messageId"]),
        (200, "msg-again"),
        (200, left["headers"]["messageId"]),
    ]
    assert {json.loads(a["data"])["status"] for a in acks} == {"SUCCESS"}
    log = calls(qiao_client)
    assert ("gateway/connections/open", "OK", None) in log
    assert ("callback user_add_org", "REPLAY", None) in log

    drain(qiao_worker)
    edges = qiao_client.data(CALLBACKS)["connectorCallbacks"]["edges"]
    assert [e["node"] for e in edges] == [
        {"key": "dingtalk:event:ev-1", "kind": "user_add_org", "handled": True, "outcome": "kept"},
        {
            "key": "dingtalk:event:ev-2",
            "kind": "user_leave_org",
            "handled": True,
            "outcome": "kept",
        },
    ]


def test_a_disconnect_opens_a_new_ticket_and_a_bad_frame_is_answered_later(
    qiao_client: Any, qiao_runtime: Any, dingtalk: FakeDingTalk
) -> None:
    add_dingtalk(qiao_client, dingtalk)
    broken = dingtalk.event("ev-3", "user_add_org", {})
    broken["data"] = "not json"
    dingtalk.stream_events = [broken]
    connector = settings.by_name(qiao_runtime, "钉钉")
    stream.run(qiao_runtime, connector, stop=lambda: dingtalk.finished >= 2)
    assert dingtalk.connections == 2
    statuses = [json.loads(a["data"])["status"] for a in dingtalk.answers if "status" in a["data"]]
    assert statuses == ["LATER", "LATER"]
    assert [op for op, *_ in calls(qiao_client)].count("gateway/connections/open") == 2


def test_a_used_ticket_is_refused(dingtalk: FakeDingTalk) -> None:
    endpoint = dingtalk.url.replace("http://", "ws://") + "/gateway/ws"
    with pytest.raises(AuthenticationError, match="refused the ticket"):
        serve(Ticket(endpoint, "ticket-never-issued"), lambda frame: True)


def test_wrong_credentials_wait_and_are_logged(
    qiao_client: Any, qiao_runtime: Any, dingtalk: FakeDingTalk
) -> None:
    add_dingtalk(qiao_client, dingtalk, secret="wrong")
    waits: list[float] = []
    connector = settings.by_name(qiao_runtime, "钉钉")
    stream.run(qiao_runtime, connector, stop=lambda: len(waits) >= 2, sleep=waits.append)
    assert waits == [stream.RETRY_OPEN, stream.RETRY_OPEN]
    assert ("gateway/connections/open", "ERROR", "InvalidAuthentication") in calls(qiao_client)
    assert dingtalk.connections == 0


def test_frames_parse_as_published() -> None:
    frame = Frame.parse(
        json.dumps(
            {
                "specVersion": "1.0",
                "type": "EVENT",
                "headers": {"topic": "*", "messageId": "m1", "eventId": "e1", "eventType": "x"},
                "data": json.dumps({"a": 1}),
            }
        )
    )
    assert (frame.type, frame.topic, frame.message_id, frame.payload()) == (
        "EVENT",
        "*",
        "m1",
        {"a": 1},
    )
    assert stream.inbound_of(frame).message == {"a": 1, "EventType": "x"}
    assert stream.inbound_of(frame).key == "dingtalk:event:e1"
