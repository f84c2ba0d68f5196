"""The DingTalk client and callbacks against a local DingTalk server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from qiao.core.testing.server import LiveServer
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    CallbackError,
    CallbackSignatureError,
    QuotaExceededError,
    RateLimitedError,
    UnavailableError,
)
from qiao.plugins.connectors.dingtalk.approvals import Outcome, approval_event
from qiao.plugins.connectors.dingtalk.callback import DingTalkCallback
from qiao.plugins.connectors.dingtalk.client import DingTalkClient

from .conftest import FakeTime, statuses
from .fakes import dingtalk as fake
from .fakes import wxcrypt

NOTICE = "/topapi/message/corpconversation/asyncsend_v2"
NOTICE_OP = "message/corpconversation/asyncsend_v2"
INSTANCES = "/v1.0/workflow/processInstances"
TEXT = {"msgtype": "text", "text": {"content": "合同 HT-9 待用印"}}
FORM = [("合同编号", "HT-9"), ("金额", "128000.00")]


@pytest.fixture
def server(fake_time: FakeTime) -> Iterator[fake.FakeDingTalk]:
    with fake.FakeDingTalk(fake_time.clock).serve() as running:
        yield running


def make_client(url: str, http: httpx.Client, wiring: Wiring, **options: Any) -> DingTalkClient:
    secret = options.pop("secret", fake.APP_SECRET)
    return DingTalkClient(
        fake.APP_KEY, secret, http=http, wiring=wiring, api_base=url, oapi_base=url, **options
    )


@pytest.fixture
def client(server: fake.FakeDingTalk, http: httpx.Client, wiring: Wiring) -> DingTalkClient:
    return make_client(server.url, http, wiring)


def test_a_new_style_token_serves_both_api_families(
    client: DingTalkClient, server: fake.FakeDingTalk
) -> None:
    task = client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan", "lisi"])
    instance = client.create_approval("PROC-SEAL", "zhangsan", FORM, dept_id=1)
    assert server.issued == 1
    assert server.notices[0]["userid_list"] == "zhangsan,lisi"
    assert server.notices[0]["msg"] == TEXT and task == "1"
    (notice,) = server.hits(NOTICE)
    (create,) = server.hits(INSTANCES)
    assert notice.query["access_token"] == "dt-token-1"
    assert create.headers["x-acs-dingtalk-access-token"] == "dt-token-1"
    assert server.instances[instance]["request"]["formComponentValues"] == [
        {"name": "合同编号", "value": "HT-9"},
        {"name": "金额", "value": "128000.00"},
    ]


def test_an_old_style_token_is_fetched_from_gettoken(
    server: fake.FakeDingTalk, http: httpx.Client, wiring: Wiring
) -> None:
    client = make_client(server.url, http, wiring, token_style="old")
    client.send_work_notice(fake.AGENT_ID, TEXT, to_all=True)
    assert server.hits("/gettoken") and not server.hits("/v1.0/oauth2/accessToken")
    assert server.notices[0]["to_all_user"] is True


@pytest.mark.parametrize(("style", "code"), [("new", "InvalidAuthentication"), ("old", "40089")])
def test_a_wrong_secret_is_an_authentication_error_not_retried(
    server: fake.FakeDingTalk, http: httpx.Client, wiring: Wiring, style: str, code: str
) -> None:
    client = make_client(server.url, http, wiring, token_style=style, secret="wrong")
    with pytest.raises(AuthenticationError) as caught:
        client.access_token()
    assert caught.value.code == code
    assert len(server.requests) == 1


def test_expired_tokens_are_refreshed_once_on_both_families(
    client: DingTalkClient, server: fake.FakeDingTalk, calls: list[CallRecord]
) -> None:
    client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    server.expire_tokens()
    client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    server.expire_tokens()
    client.create_approval("PROC-SEAL", "zhangsan", FORM)
    assert server.issued == 3
    assert statuses(calls, NOTICE_OP) == ["ok", "error:42001", "ok"]
    assert statuses(calls, "workflow/processInstances:create") == [
        "error:InvalidAuthentication",
        "ok",
    ]


def test_qps_codes_pause_the_api_and_retry(
    client: DingTalkClient, server: fake.FakeDingTalk, fake_time: FakeTime, calls: list[CallRecord]
) -> None:
    client.access_token()
    server.fail(NOTICE, {"errcode": 90018, "errmsg": "请求的QPS超过限制"})
    server.fail(INSTANCES, fake.failure(403, "Forbidden.AccessDenied.QpsLimitForApi", "qps"))
    client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    client.create_approval("PROC-SEAL", "zhangsan", FORM)
    assert statuses(calls, NOTICE_OP) == ["error:90018", "ok"]
    assert statuses(calls, "workflow/processInstances:create") == [
        "error:Forbidden.AccessDenied.QpsLimitForApi",
        "ok",
    ]
    assert all(1.0 <= s <= 1.5 for s in fake_time.sleeps)


def test_the_global_limit_and_the_block_page_hold_every_api(
    client: DingTalkClient, server: fake.FakeDingTalk, fake_time: FakeTime, calls: list[CallRecord]
) -> None:
    client.access_token()
    server.block_page(NOTICE)
    started = fake_time.now
    client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    assert fake_time.now - started >= 20.0
    assert statuses(calls, NOTICE_OP) == ["error:block_page", "ok"]
    server.fail(NOTICE, {"errcode": 90002, "errmsg": "超过全局调用频率"})
    client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    assert statuses(calls, NOTICE_OP)[-2:] == ["error:90002", "ok"]


def test_a_block_page_that_does_not_go_away_is_raised_as_throttling(
    client: DingTalkClient, server: fake.FakeDingTalk
) -> None:
    client.access_token()
    server.block_page(INSTANCES, times=4)
    with pytest.raises(RateLimitedError) as caught:
        client.approval("inst-1")
    assert caught.value.applies_to_all and caught.value.retry_after == 20.0
    assert len(server.hits(INSTANCES)) == 4


def test_the_monthly_quota_is_final(client: DingTalkClient, server: fake.FakeDingTalk) -> None:
    client.access_token()
    server.fail(NOTICE, {"errcode": 90020, "errmsg": "超过月调用量"})
    with pytest.raises(QuotaExceededError):
        client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    assert len(server.hits(NOTICE)) == 1


def test_a_work_notice_is_not_resent_after_a_server_error(
    client: DingTalkClient, server: fake.FakeDingTalk
) -> None:
    client.access_token()
    server.fail(NOTICE, Response("oops", status_code=500))
    with pytest.raises(UnavailableError):
        client.send_work_notice(fake.AGENT_ID, TEXT, users=["zhangsan"])
    assert len(server.hits(NOTICE)) == 1


@pytest.mark.parametrize(
    ("status", "result", "outcome"),
    [
        ("RUNNING", "", Outcome.PENDING),
        ("COMPLETED", "agree", Outcome.APPROVED),
        ("COMPLETED", "refuse", Outcome.REFUSED),
        ("TERMINATED", "", Outcome.TERMINATED),
        ("CANCELED", "", Outcome.CANCELED),
    ],
)
def test_approval_instances_map_to_outcomes(
    client: DingTalkClient, server: fake.FakeDingTalk, status: str, result: str, outcome: Outcome
) -> None:
    instance = client.create_approval("PROC-SEAL", "zhangsan", FORM)
    server.finish(instance, status, result)
    found = client.approval(instance)
    assert (found.status, found.outcome) == (status, outcome)
    assert found.detail["title"] == "合同用印"


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        ({"type": "start"}, Outcome.PENDING),
        ({"type": "finish", "result": "agree"}, Outcome.APPROVED),
        ({"type": "finish", "result": "refuse"}, Outcome.REFUSED),
        ({"type": "terminate"}, Outcome.TERMINATED),
    ],
)
def test_bpms_instance_change_events_map_to_outcomes(
    event: dict[str, str], outcome: Outcome
) -> None:
    message = {
        "EventType": "bpms_instance_change",
        "processInstanceId": "inst-7",
        "processCode": "PROC-SEAL",
        **event,
    }
    change = approval_event(message)
    assert change is not None
    assert (change.instance_id, change.outcome) == ("inst-7", outcome)
    assert approval_event({"EventType": "user_add_org"}) is None


TOKEN = "mryue"
AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
OWNER = "ding6ccabc44d2c8d38b"


def test_the_official_check_url_vector_decrypts() -> None:
    callback = DingTalkCallback(TOKEN, AES_KEY, OWNER)
    encrypted = (
        "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBK"
        "yDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3"
    )
    query = {
        "signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
        "timestamp": "1608001896814",
        "nonce": "WL4PK6yA",
    }
    inbound = callback.receive(query, json.dumps({"encrypt": encrypted}).encode())
    assert inbound.message == {"EventType": "check_url"}
    with pytest.raises(CallbackSignatureError):
        callback.receive({**query, "nonce": "other"}, json.dumps({"encrypt": encrypted}).encode())


class Receiver:
    def __init__(self, callback: DingTalkCallback) -> None:
        self.callback = callback
        self.processed: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        try:
            inbound = self.callback.receive(dict(request.query_params), await request.body())
        except CallbackError as error:
            return PlainTextResponse(str(error), status_code=400)
        if inbound.first:
            self.processed.append(inbound.message)
        return JSONResponse(self.callback.reply_success())


@pytest.fixture
def receiver(fake_time: FakeTime) -> Iterator[tuple[Receiver, str]]:
    target = Receiver(DingTalkCallback(TOKEN, AES_KEY, OWNER, clock=fake_time.clock))
    app = Starlette(routes=[Route("/dingtalk", target.handle, methods=["POST"])])
    with LiveServer(app) as server:
        yield target, f"{server.url}/dingtalk"


def test_pushed_events_are_answered_success_and_replays_processed_once(
    receiver: tuple[Receiver, str],
) -> None:
    target, url = receiver
    event = {
        "EventType": "bpms_instance_change",
        "processInstanceId": "inst-7",
        "processCode": "PROC-SEAL",
        "type": "finish",
        "result": "agree",
    }
    with httpx.Client(timeout=5) as http:
        for nonce in ("a1", "b2", "c3"):
            query, body = fake.push(TOKEN, AES_KEY, OWNER, event, "1767225600000", nonce)
            answer = http.post(url, params=query, content=body)
            assert answer.status_code == 200
            reply = answer.json()
            expected = wxcrypt.sign(TOKEN, reply["timeStamp"], reply["nonce"], reply["encrypt"])
            assert reply["msg_signature"] == expected
            assert wxcrypt.decrypt(AES_KEY, reply["encrypt"]) == (b"success", OWNER)
        query, body = fake.push("wrong", AES_KEY, OWNER, event, "1767225600000", "d4")
        assert http.post(url, params=query, content=body).status_code == 400
    assert target.processed == [event]
