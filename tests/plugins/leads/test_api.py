"""S1 through the public API: webhook and form in, tagged and assigned, touched, converted,
measured; imports over GraphQL; merging duplicates."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.plugins.leads.inbound.signatures import sign

Create = Callable[..., Record]


def _post_webhook(server: LiveServer, channel: Record, body: dict[str, Any], **change: Any) -> Any:
    raw = json.dumps(body, ensure_ascii=False).encode()
    message_id = change.get("id", "msg_1")
    stamp = str(change.get("timestamp", int(time.time())))
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": change.get(
            "signature", sign(channel["secret"], message_id, stamp, raw)
        ),
        "content-type": "application/json",
    }
    # What is checked is the answer, not its speed: a loaded test machine exceeds httpx's 5 s.
    url = f"{server.url}/leads/webhooks/{channel['key']}"
    return httpx.post(url, content=raw, headers=headers, timeout=60)


def test_s1_webhook_lead_is_tagged_assigned_touched_converted_and_measured(
    qiao_server: LiveServer,
    qiao_client: GraphQLClient,
    create: Create,
    get: Any,
    sales_team: dict[str, Record],
) -> None:
    channel = create("lead_channel", name="公众号表单", kind="WEBHOOK", source="WECHAT")
    assert channel["secret"].startswith("whsec_")
    body = {
        "姓名": "陈工",
        "手机": "0574-8690 1158",
        "公司": "宁波甬液液压件有限公司",
        "行业": "液压件",
        "留言": "急需液压阀样品",
    }
    answer = _post_webhook(qiao_server, channel, body)
    assert answer.status_code == 201, answer.text
    lead = get("lead", answer.json()["id"])
    assert lead["source"] == "WECHAT" and lead["channel_id"] == channel["id"]
    assert lead["intent_tags"] == ["高意向", "工业客户"]
    assert (lead["city"], lead["region"]) == ("宁波", "华东")
    assert lead["owner_id"] == sales_team["wang"]["id"]
    again = _post_webhook(qiao_server, channel, body)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "id": lead["id"]})
    create("activity", kind="CALL", occurred_at=lead["created_at"], lead=lead["id"])
    conversion = qiao_client.data(
        'mutation($id: ID!) { convertLead(id: $id, amount: "86000.00") '
        "{ accountId contactId opportunityId accountCreated } }",
        {"id": lead["id"]},
    )["convertLead"]
    assert conversion["accountCreated"] is True
    opportunity = get("opportunity", conversion["opportunityId"])
    assert opportunity["lead_id"] == lead["id"]
    assert get("account", conversion["accountId"])["name"] == "宁波甬液液压件有限公司"
    create("lead", name="未跟进", source="WECHAT")
    figures = qiao_client.data(
        "{ leadStats(groupBy: SOURCE) { key leads touchedWithin30Minutes "
        "touchedWithin30MinutesShare converted conversionRate } }"
    )["leadStats"]
    assert figures == [
        {
            "key": "WECHAT",
            "leads": 2,
            "touchedWithin30Minutes": 1,
            "touchedWithin30MinutesShare": 0.5,
            "converted": 1,
            "conversionRate": 0.5,
        }
    ]


def test_webhook_signatures_and_timestamps_are_checked(
    qiao_server: LiveServer, create: Create
) -> None:
    channel = create("lead_channel", name="CRM sync", kind="WEBHOOK")
    body = {"name": "x"}
    forged = _post_webhook(qiao_server, channel, body, signature="v1,AAAA")
    assert forged.status_code == 401
    assert forged.json()["field"] == "webhook-signature"
    old = _post_webhook(qiao_server, channel, body, timestamp=int(time.time()) - 301)
    assert old.status_code == 400 and "5 minutes" in old.json()["error"]
    missing = httpx.post(f"{qiao_server.url}/leads/webhooks/{channel['key']}", content=b"{}")
    assert missing.status_code == 400
    unknown = httpx.post(
        f"{qiao_server.url}/leads/webhooks/nope",
        content=b"{}",
        headers={"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
    )
    assert unknown.status_code == 404
    invalid = _post_webhook(qiao_server, channel, {"name": "y", "mobile": "12"}, id="m2")
    assert invalid.status_code == 400 and invalid.json()["field"] == "mobile"


def _change_channel(runtime: Runtime, channel: Record, **values: Any) -> None:
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        runtime.records.update(ctx, "lead_channel", channel["id"], values)


def _leads(runtime: Runtime) -> int:
    with runtime.db.read() as conn:
        page = runtime.records.list(conn, "lead", first=10, with_total=True, actor=Actor.system())
    assert page.total_count is not None
    return page.total_count


def test_a_new_secret_or_a_disabled_webhook_applies_to_the_next_call(
    qiao_server: LiveServer, qiao_runtime: Runtime, create: Create
) -> None:
    # The server remembers a channel it has seen; what it stores must still follow the
    # channel as it is now.
    channel = create("lead_channel", name="CRM sync", kind="WEBHOOK")
    assert _post_webhook(qiao_server, channel, {"name": "甲"}, id="m1").status_code == 201
    rotated = {**channel, "secret": "whsec_" + base64.b64encode(b"k" * 32).decode()}
    _change_channel(qiao_runtime, channel, secret=rotated["secret"])
    stale = _post_webhook(qiao_server, channel, {"name": "乙"}, id="m2")
    assert stale.status_code == 401 and stale.json()["field"] == "webhook-signature"
    assert _post_webhook(qiao_server, rotated, {"name": "丙"}, id="m3").status_code == 201
    _change_channel(qiao_runtime, channel, is_active=False)
    assert _post_webhook(qiao_server, rotated, {"name": "丁"}, id="m4").status_code == 404
    assert _leads(qiao_runtime) == 2


def test_form_cors_honeypot_rate_limit_and_snippet(
    qiao_server: LiveServer, create: Create, get: Any
) -> None:
    channel = create(
        "lead_channel",
        name="官网",
        allowed_origins=["https://www.example.com"],
        rate_limit_per_minute=2,
    )
    url = f"{qiao_server.url}/leads/forms/{channel['key']}"
    origin = {"origin": "https://www.example.com"}
    preflight = httpx.options(url, headers=origin)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://www.example.com"
    assert (
        httpx.post(url, data={"name": "x"}, headers={"origin": "https://evil.example"}).status_code
        == 403
    )
    sent = httpx.post(
        url, data={"name": "赵敏", "mobile": "13952741180", "产品": "数控车床"}, headers=origin
    )
    assert sent.status_code == 201, sent.text
    lead = get("lead", sent.json()["id"])
    assert lead["source"] == "WEB_FORM" and lead["description"] == "产品: 数控车床"
    trapped = httpx.post(url, data={"name": "bot", "website_url": "http://spam"}, headers=origin)
    assert trapped.status_code == 201 and "id" not in trapped.json()
    assert httpx.post(url, data={"name": "z"}, headers=origin).status_code == 429
    script = httpx.get(f"{url}/embed.js")
    assert script.status_code == 200 and url in script.text and "website_url" in script.text


def test_import_leads_over_graphql_then_merge_the_duplicate(
    qiao_client: GraphQLClient, create: Create, get: Any
) -> None:
    csv = "姓名,手机,公司\n林晓燕,13857412096,宁波东海\n林小姐,138 5741 2096,宁波东海有限公司\n"
    result = qiao_client.data(
        'mutation($f: String!) { importLeads(fileBase64: $f, filename: "a.csv") '
        "{ rows created duplicates errors problems { row kind reason } } }",
        {"f": base64.b64encode(csv.encode()).decode()},
    )["importLeads"]
    assert (result["rows"], result["created"], result["duplicates"]) == (2, 1, 1)
    assert result["problems"][0]["row"] == 3
    kept = create("lead", name="林晓燕 (官网)", email="linxy@donghai.example.com")
    merged_id = qiao_client.data(
        '{ leads(filter: {name: {eq: "林晓燕"}}) { edges { node { id } } } }'
    )["leads"]["edges"][0]["node"]["id"]
    create("activity", kind="VISIT", occurred_at="2026-03-02T09:00:00+08:00", lead=merged_id)
    merged = qiao_client.data(
        "mutation($k: ID!, $m: ID!) { mergeLeads(keepId: $k, mergeId: $m) }",
        {"k": kept["id"], "m": merged_id},
    )["mergeLeads"]
    assert merged["mergedFrom"][0]["id"] == merged_id
    assert len(merged["mergedFrom"][0]["moved"]["activity"]) == 1
    stored = get("lead", kept["id"])
    assert stored["mobile"] == "+8613857412096"
    assert stored["first_touch_at"] is not None
