"""WeCom callbacks: the official vectors, messages pushed over HTTP, replies and replays."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from qiao.core.testing.server import LiveServer
from qiao.plugins.connectors.common.errors import (
    CallbackDecryptError,
    CallbackError,
    CallbackSignatureError,
)
from qiao.plugins.connectors.wecom.callback import WeComCallback, replay_key

from .fakes import wecom as fake
from .fakes import wxcrypt

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"


OFFICIAL_VECTORS = [
    pytest.param(
        (TOKEN, AES_KEY, CORP_ID),
        ("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780"),
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
        "1616140317555161061",
        id="xml",
    ),
    pytest.param(
        (
            "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            "ww1436e0e65a779aee",
        ),
        ("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683"),
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
        "1288432023552776189",
        id="json",
    ),
]


@pytest.mark.parametrize(("settings", "query", "echostr", "expected"), OFFICIAL_VECTORS)
def test_url_verification_matches_the_official_vectors(
    settings: tuple[str, str, str], query: tuple[str, str, str], echostr: str, expected: str
) -> None:
    callback = WeComCallback(*settings)
    assert callback.verify_url(*query, echostr) == expected


def test_a_changed_signature_timestamp_or_receiver_is_refused() -> None:
    echostr = (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    )
    signature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    callback = WeComCallback(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(CallbackSignatureError):
        callback.verify_url(signature, "1409659590", "263014780", echostr)
    with pytest.raises(CallbackSignatureError):
        callback.verify_url("0" * 40, "1409659589", "263014780", echostr)
    other_corp = WeComCallback(TOKEN, AES_KEY, "ww-another-corp")
    with pytest.raises(CallbackDecryptError, match="another receiver"):
        other_corp.verify_url(signature, "1409659589", "263014780", echostr)
    other_key = WeComCallback(TOKEN, "a" * 43, CORP_ID)
    with pytest.raises(CallbackDecryptError):
        other_key.verify_url(signature, "1409659589", "263014780", echostr)


def test_a_bad_encoding_aes_key_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="43 characters"):
        WeComCallback(TOKEN, AES_KEY[:-1], CORP_ID)


class Receiver:
    """The host side of a callback URL, as Qiao's route will be: answer, then process once."""

    def __init__(self, callback: WeComCallback) -> None:
        self.callback = callback
        self.processed: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        q = request.query_params
        args = (q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        try:
            if request.method == "GET":
                return PlainTextResponse(self.callback.verify_url(*args, q.get("echostr", "")))
            body = await request.body()
            if request.headers.get("content-type", "").startswith("application/json"):
                inbound = self.callback.receive_json(*args, body)
            else:
                inbound = self.callback.receive_xml(*args, body)
        except CallbackError as error:
            return PlainTextResponse(str(error), status_code=400)
        if inbound.first:
            self.processed.append(inbound.message)
        reply = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到]]></Content></xml>"
        return PlainTextResponse(self.callback.reply_xml(reply, args[1], args[2]))


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    target = Receiver(WeComCallback(TOKEN, AES_KEY, CORP_ID))
    app = Starlette(routes=[Route("/wecom", target.handle, methods=["GET", "POST"])])
    with LiveServer(app) as server:
        yield target, f"{server.url}/wecom"


MESSAGE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1767225600</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[家长咨询：暑期班还有名额吗？]]></Content>"
    "<MsgId>7445931425216143360</MsgId><AgentID>1000002</AgentID></xml>"
)


def test_a_pushed_message_is_decrypted_answered_and_a_replay_processed_once(
    receiver: tuple[Receiver, str],
) -> None:
    target, url = receiver
    signed_url, body = fake.push_xml(url, TOKEN, AES_KEY, CORP_ID, MESSAGE, "1767225600", "n0nce")
    with httpx.Client(timeout=5) as http:
        answers = [http.post(signed_url, content=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(target.processed) == 1
    message = target.processed[0]
    assert message["Content"] == "家长咨询：暑期班还有名额吗？"
    assert message["MsgId"] == "7445931425216143360"
    reply = ET.fromstring(answers[0].text)
    encrypted = reply.findtext("Encrypt") or ""
    assert reply.findtext("MsgSignature") == wxcrypt.sign(TOKEN, "1767225600", "n0nce", encrypted)
    plain, receive_id = wxcrypt.decrypt(AES_KEY, encrypted)
    assert receive_id == CORP_ID and "收到" in plain.decode()


def test_a_forged_push_is_answered_400_and_not_processed(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    signed_url, body = fake.push_xml(url, "not-the-token", AES_KEY, CORP_ID, MESSAGE, "1", "n")
    with httpx.Client(timeout=5) as http:
        answer = http.post(signed_url, content=body)
    assert answer.status_code == 400 and "signature" in answer.text
    assert target.processed == []


def test_json_callbacks_and_events_have_their_own_replay_keys(
    receiver: tuple[Receiver, str],
) -> None:
    target, url = receiver
    event = {
        "FromUserName": "sys",
        "CreateTime": 1767225601,
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": "zhangsan",
        "ExternalUserID": "wmA",
        "State": "channel-7",
        "WelcomeCode": "W1",
    }
    encrypted = wxcrypt.encrypt(AES_KEY, CORP_ID, json.dumps(event).encode())
    signature = wxcrypt.sign(TOKEN, "1767225601", "abc", encrypted)
    body = json.dumps({"tousername": CORP_ID, "encrypt": encrypted, "agentid": fake.AGENT_ID})
    query = {"msg_signature": signature, "timestamp": "1767225601", "nonce": "abc"}
    with httpx.Client(timeout=5) as http:
        for _ in range(2):
            answer = http.post(
                url, params=query, content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 200
    assert target.processed == [event]
    assert replay_key(event) == "wecom:event:sys:1767225601:change_external_contact"
    assert replay_key({"MsgId": "42", "FromUserName": "x"}) == "wecom:msg:42"


def test_the_verification_get_is_answered_with_the_plaintext(
    receiver: tuple[Receiver, str],
) -> None:
    _, url = receiver
    encrypted = wxcrypt.encrypt(AES_KEY, CORP_ID, b"5927782489442352469")
    query = {
        "msg_signature": wxcrypt.sign(TOKEN, "1", "2", encrypted),
        "timestamp": "1",
        "nonce": "2",
        "echostr": encrypted,
    }
    with httpx.Client(timeout=5) as http:
        assert http.get(url, params=query).text == "5927782489442352469"


def test_xml_with_a_dtd_is_refused() -> None:
    callback = WeComCallback(TOKEN, AES_KEY, CORP_ID)
    body = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    with pytest.raises(CallbackDecryptError, match="DTD"):
        callback.receive_xml("s", "1", "n", body)


def test_json_replies_decrypt_to_the_message() -> None:
    callback = WeComCallback(TOKEN, AES_KEY, CORP_ID)
    reply = json.loads(callback.reply_json({"msgtype": "text"}, "17", "nn"))
    assert reply["msgsignature"] == wxcrypt.sign(TOKEN, "17", "nn", reply["encrypt"])
    plain, receive_id = wxcrypt.decrypt(AES_KEY, reply["encrypt"])
    assert json.loads(plain) == {"msgtype": "text"} and receive_id == CORP_ID
