"""The WeCom client against a local WeCom server: tokens, messages, limits, contacts."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    RecipientsRejectedError,
    TokenInvalidError,
    UnavailableError,
)
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.wecom.client import WeComClient
from qiao.plugins.connectors.wecom.messages import (
    Markdown,
    Recipients,
    SendOptions,
    TemplateCard,
    Text,
    TextCard,
)

from .conftest import FakeTime, statuses
from .fakes import wecom as fake

SEND = "/cgi-bin/message/send"
TO_ZHANGSAN = Recipients(users=("zhangsan",))


@pytest.fixture
def server(fake_time: FakeTime) -> Iterator[fake.FakeWeCom]:
    with fake.FakeWeCom(fake_time.clock).serve() as running:
        yield running


def make_client(url: str, http: httpx.Client, wiring: Wiring, **options: Any) -> WeComClient:
    secret = options.pop("secret", fake.SECRET)
    return WeComClient(
        fake.CORP_ID, secret, fake.AGENT_ID, http=http, wiring=wiring, base_url=url, **options
    )


@pytest.fixture
def client(server: fake.FakeWeCom, http: httpx.Client, wiring: Wiring) -> WeComClient:
    return make_client(server.url, http, wiring)


def test_each_message_type_reaches_the_recipient_with_wecoms_fields(
    client: WeComClient, server: fake.FakeWeCom
) -> None:
    card = {"card_type": "text_notice", "main_title": {"title": "工单 T-1 超时"}}
    for message in (
        Text("工单 T-1 已分派给你"),
        TextCard("工单 T-1", "客户：宁波液压", "https://crm.example.cn/t/1", "查看"),
        Markdown("**工单** T-1"),
        TemplateCard(card),
    ):
        result = client.send_message(TO_ZHANGSAN, message)
        assert result.msgid and result.shortfall() is None
    bodies = server.sent
    assert [b["msgtype"] for b in bodies] == ["text", "textcard", "markdown", "template_card"]
    assert bodies[0]["text"] == {"content": "工单 T-1 已分派给你"}
    assert bodies[1]["textcard"]["btntxt"] == "查看"
    assert bodies[3]["template_card"] == card
    assert all(b["touser"] == "zhangsan" and b["agentid"] == fake.AGENT_ID for b in bodies)
    assert result.response_code == f"rc-{result.msgid}"


def test_the_token_is_fetched_once_and_shared_through_the_store(
    client: WeComClient, server: fake.FakeWeCom, http: httpx.Client, wiring: Wiring
) -> None:
    client.send_message(TO_ZHANGSAN, Text("一"))
    client.send_message(TO_ZHANGSAN, Text("二"))
    other = make_client(server.url, http, wiring)
    other.send_message(TO_ZHANGSAN, Text("三"))
    assert server.issued == 1
    assert {r.query["access_token"] for r in server.hits(SEND)} == {"token-1"}


def test_the_token_is_refreshed_before_it_expires(
    client: WeComClient, server: fake.FakeWeCom, fake_time: FakeTime, calls: list[CallRecord]
) -> None:
    client.send_message(TO_ZHANGSAN, Text("一"))
    fake_time.advance(fake.TOKEN_LIFETIME - 299)
    client.send_message(TO_ZHANGSAN, Text("二"))
    assert server.issued == 2
    assert [r.query["access_token"] for r in server.hits(SEND)] == ["token-1", "token-2"]
    assert statuses(calls, "message/send") == ["ok", "ok"]


@pytest.mark.parametrize("code", [40014, 42001])
def test_an_invalid_or_expired_token_is_refreshed_once_and_the_call_retried(
    client: WeComClient, server: fake.FakeWeCom, calls: list[CallRecord], code: int
) -> None:
    client.send_message(TO_ZHANGSAN, Text("一"))
    server.revoke_tokens(code)
    result = client.send_message(TO_ZHANGSAN, Text("二"))
    assert result.msgid
    assert server.issued == 2
    assert statuses(calls, "message/send") == ["ok", f"error:{code}", "ok"]


def test_a_token_refused_again_after_the_refresh_is_raised(
    client: WeComClient, server: fake.FakeWeCom
) -> None:
    server.fail(SEND, {"errcode": 40014, "errmsg": "invalid access_token"}, times=2)
    with pytest.raises(TokenInvalidError) as caught:
        client.send_message(TO_ZHANGSAN, Text("一"))
    assert caught.value.code == "40014"
    assert len(server.hits(SEND)) == 2 and server.issued == 2
    assert server.sent == []


def test_busy_is_retried_three_times_with_growing_jittered_waits(
    client: WeComClient, server: fake.FakeWeCom, fake_time: FakeTime, calls: list[CallRecord]
) -> None:
    client.access_token()
    server.fail(SEND, {"errcode": -1, "errmsg": "system busy"}, times=3)
    assert client.send_message(TO_ZHANGSAN, Text("一")).msgid
    assert statuses(calls, "message/send") == ["error:-1"] * 3 + ["ok"]
    assert len(fake_time.sleeps) == 3
    for failure, wait in enumerate(fake_time.sleeps, start=1):
        assert 0 <= wait <= 0.5 * 2 ** (failure - 1)


def test_busy_a_fourth_time_gives_up(client: WeComClient, server: fake.FakeWeCom) -> None:
    client.access_token()
    server.fail(SEND, {"errcode": -1, "errmsg": "system busy"}, times=4)
    with pytest.raises(UnavailableError) as caught:
        client.send_message(TO_ZHANGSAN, Text("一"))
    assert caught.value.retryable and caught.value.code == "-1"
    assert len(server.hits(SEND)) == 4 and server.sent == []


def test_the_frequency_limit_holds_the_api_until_the_next_minute(
    client: WeComClient, server: fake.FakeWeCom, fake_time: FakeTime, calls: list[CallRecord]
) -> None:
    server.per_minute = 2
    fake_time.now = 60 * (int(fake_time.now) // 60)
    for n in range(3):
        client.send_message(TO_ZHANGSAN, Text(f"第{n}条"))
    assert statuses(calls, "message/send") == ["ok", "ok", "error:45009", "ok"]
    assert len(server.sent) == 3
    assert fake_time.sleeps and fake_time.sleeps[-1] >= 60


def test_the_client_keeps_under_its_declared_rate_without_being_refused(
    server: fake.FakeWeCom,
    http: httpx.Client,
    wiring: Wiring,
    fake_time: FakeTime,
    calls: list[CallRecord],
) -> None:
    rates = {"message/send": [Rate(4, 60)]}
    limits = RateLimits(fake_time.clock, fake_time.sleep, per_operation=rates)
    client = make_client(server.url, http, wiring, limits=limits)
    server.per_minute = 4
    for offset in (0, 17, 45):
        fake_time.now = 60 * (int(fake_time.now) // 60) + 60 + offset
        for n in range(8):
            client.send_message(TO_ZHANGSAN, Text(f"第{n}条"))
    assert len(server.sent) == 24
    assert statuses(calls, "message/send") == ["ok"] * 24
    assert all(r.query.get("access_token") for r in server.hits(SEND))
    assert fake_time.sleeps and all(s <= 30.0 + 1e-9 for s in fake_time.sleeps)


def test_partly_invalid_recipients_are_reported_and_not_a_failure(
    client: WeComClient, server: fake.FakeWeCom, calls: list[CallRecord]
) -> None:
    recipients = Recipients(users=("zhangsan", "nobody", "wangwu"), parties=("99",))
    result = client.send_message(recipients, Text("通知"))
    assert result.msgid
    assert result.invalid_users == ("nobody",)
    assert result.unlicensed_users == ("wangwu",)
    assert result.invalid_parties == ("99",)
    assert server.sent[0]["to"] == ["zhangsan"]
    (record,) = [r for r in calls if r.operation == "message/send"]
    assert record.status == "partial"
    assert record.detail == "1 invalid users, 1 invalid parties, 1 unlicensed users"


def test_all_recipients_invalid_is_a_failure_and_not_retried(
    client: WeComClient, server: fake.FakeWeCom
) -> None:
    with pytest.raises(RecipientsRejectedError) as caught:
        client.send_message(Recipients(users=("nobody", "ghost")), Text("通知"))
    assert caught.value.code == "81013" and not caught.value.retryable
    assert len(server.hits(SEND)) == 1


def test_a_wrong_secret_is_an_authentication_error_without_retries(
    server: fake.FakeWeCom, http: httpx.Client, wiring: Wiring
) -> None:
    client = make_client(server.url, http, wiring, secret="wrong")
    with pytest.raises(AuthenticationError) as caught:
        client.send_message(TO_ZHANGSAN, Text("通知"))
    assert caught.value.code == "40001"
    assert len(server.hits("/cgi-bin/gettoken")) == 1 and server.hits(SEND) == []


def test_a_5xx_is_retried_for_a_send_only_when_wecom_checks_duplicates(
    client: WeComClient, server: fake.FakeWeCom
) -> None:
    client.access_token()
    server.fail(SEND, Response("upstream failed", status_code=500))
    with pytest.raises(UnavailableError) as caught:
        client.send_message(TO_ZHANGSAN, Text("一"))
    assert caught.value.maybe_processed and len(server.hits(SEND)) == 1
    server.fail(SEND, Response("upstream failed", status_code=500))
    result = client.send_message(TO_ZHANGSAN, Text("一"), SendOptions(duplicate_check_seconds=600))
    assert result.msgid and len(server.hits(SEND)) == 3
    assert server.sent[-1]["enable_duplicate_check"] == 1
    assert server.sent[-1]["duplicate_check_interval"] == 600


def test_an_unreachable_server_is_retried_then_reported(
    http: httpx.Client, wiring: Wiring, calls: list[CallRecord]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", http, wiring)
    with pytest.raises(UnavailableError) as caught:
        client.access_token()
    assert not caught.value.maybe_processed
    assert statuses(calls, "gettoken") == ["error:None"] * 4


def test_call_records_hash_the_payload_and_leave_the_secret_out(
    client: WeComClient, calls: list[CallRecord]
) -> None:
    client.send_message(TO_ZHANGSAN, Text("通知"))
    token_call, send_call = calls
    assert token_call.operation == "gettoken" and token_call.vendor == "wecom"
    assert fake.SECRET not in repr(calls)
    body = {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": fake.AGENT_ID,
        "text": {"content": "通知"},
        "safe": 0,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert send_call.payload_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert send_call.status == "ok" and send_call.latency_ms > 0 and send_call.attempt == 1


def test_message_limits_are_checked_before_sending() -> None:
    with pytest.raises(ValueError, match="2049 bytes"):
        Text("x" * 2049)
    with pytest.raises(ValueError, match="at most 1000 users"):
        Recipients(users=tuple(f"u{n}" for n in range(1001)))
    with pytest.raises(ValueError, match="at least one recipient"):
        Recipients()
    assert Recipients(everyone=True).fields() == {"touser": "@all"}


def test_external_contacts_page_to_the_end(client: WeComClient, server: fake.FakeWeCom) -> None:
    server.add_customer("wmA", "宁波液压", ["zhangsan", "lisi", "wangwu"])
    server.add_customer("wmB", "杭州模具", ["zhangsan"])
    server.add_customer("wmC", "苏州注塑", ["lisi"])
    assert client.external_contact_ids("zhangsan") == ["wmA", "wmB"]
    assert client.external_contact_ids("nobody") == []
    contact = client.external_contact("wmA")
    assert contact.profile["name"] == "宁波液压"
    assert [f["userid"] for f in contact.follow_users] == ["zhangsan", "lisi", "wangwu"]
    assert [r.query.get("cursor") for r in server.hits("/cgi-bin/externalcontact/get")] == [
        None,
        "2",
    ]
    rows = list(client.external_contacts_of(["zhangsan", "lisi"], limit=1))
    assert [
        (r["external_contact"]["external_userid"], r["follow_info"]["userid"]) for r in rows
    ] == [("wmA", "zhangsan"), ("wmA", "lisi"), ("wmB", "zhangsan"), ("wmC", "lisi")]
    assert len(server.hits("/cgi-bin/externalcontact/batch/get_by_user")) == 4
