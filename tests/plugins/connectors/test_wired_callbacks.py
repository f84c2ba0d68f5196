"""Callback routes of a live server: signatures checked, replays refused, messages acted on."""

from __future__ import annotations

import json
from typing import Any

import httpx

from qiao.core.testing.worker import drain
from qiao.plugins.connectors.common.msgcrypt import MessageCrypt

from .deployment import add_connector, admin_id, calls, set_user
from .fakes import wecom as wecom_fake
from .fakes.dingtalk import push
from .fakes.wecom import FakeWeCom, push_xml

TOKEN = "cb-token-1"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

TEXT = (
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName>"
    "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1780279200</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[华东精工询价：主轴 20 套]]></Content>"
    "<MsgId>7000001</MsgId><AgentID>1000002</AgentID></xml>"
)
CONTACT_EVENT = (
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>1780279300</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[change_external_contact]]></Event>"
    "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
    "<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmNEW1]]></ExternalUserID></xml>"
)


def add_wecom(client: Any, url: str, corp_id: str = wecom_fake.CORP_ID, **secrets: str) -> None:
    add_connector(
        client,
        name="wx",
        vendor="WECOM",
        baseUrl=url,
        settings={"corp_id": corp_id, "agent_id": wecom_fake.AGENT_ID},
        appSecret=wecom_fake.SECRET,
        callbackToken=secrets.get("token", TOKEN),
        callbackAesKey=secrets.get("key", AES_KEY),
    )


def test_wecom_url_verification_answers_the_official_vector(
    qiao_client: Any, qiao_server: Any
) -> None:
    add_wecom(qiao_client, "http://127.0.0.1:9", corp_id="wx5823bf96d3bd56c7", token="QDG6eK")
    query = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": (
            "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
        ),
    }
    answer = httpx.get(f"{qiao_server.url}/connectors/wx/callback", params=query)
    assert answer.status_code == 200 and answer.text == "1616140317555161061"
    bad = httpx.get(f"{qiao_server.url}/connectors/wx/callback", params={**query, "nonce": "1"})
    assert bad.status_code == 401
    assert httpx.get(f"{qiao_server.url}/connectors/none/callback").status_code == 404


def test_a_wecom_message_becomes_an_activity_once(
    qiao_client: Any, qiao_server: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    add_wecom(qiao_client, wecom.url)
    set_user(qiao_client, admin_id(qiao_client), wecomUserid="zhangsan")
    url, body = push_xml(
        f"{qiao_server.url}/connectors/wx/callback",
        TOKEN,
        AES_KEY,
        wecom_fake.CORP_ID,
        TEXT.format(corp=wecom_fake.CORP_ID),
        "1780279201",
        "n1",
    )
    for _ in range(2):  # WeCom re-sends what it thinks was not answered
        answer = httpx.post(url, content=body)
        assert answer.status_code == 200 and answer.text == "success"
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ activities { edges { node { kind channel summary owner { username } } } } }"
    )["activities"]["edges"]
    assert [e["node"] for e in edges] == [
        {
            "kind": "MESSAGE",
            "channel": "WECOM",
            "summary": "华东精工询价：主轴 20 套",
            "owner": {"username": "admin"},
        }
    ]
    assert [c[:2] for c in calls(qiao_client)] == [
        ("callback text", "OK"),
        ("callback text", "REPLAY"),
    ]


def test_a_new_wecom_customer_arrives_as_a_contact(
    qiao_client: Any, qiao_server: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    add_wecom(qiao_client, wecom.url)
    set_user(qiao_client, admin_id(qiao_client), wecomUserid="zhangsan")
    wecom.add_customer("wmNEW1", "赵总", ["zhangsan"])
    url, body = push_xml(
        f"{qiao_server.url}/connectors/wx/callback",
        TOKEN,
        AES_KEY,
        wecom_fake.CORP_ID,
        CONTACT_EVENT.format(corp=wecom_fake.CORP_ID),
        "1780279301",
        "n2",
    )
    assert httpx.post(url, content=body).status_code == 200
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ contacts { edges { node { name wecomExternalUserid owner { username } } } } }"
    )["contacts"]["edges"]
    assert [e["node"] for e in edges] == [
        {"name": "赵总", "wecomExternalUserid": "wmNEW1", "owner": {"username": "admin"}}
    ]


def test_a_tampered_wecom_message_is_refused_and_logged(
    qiao_client: Any, qiao_server: Any, wecom: FakeWeCom
) -> None:
    add_wecom(qiao_client, wecom.url)
    url, body = push_xml(
        f"{qiao_server.url}/connectors/wx/callback",
        "another-token",
        AES_KEY,
        wecom_fake.CORP_ID,
        TEXT.format(corp=wecom_fake.CORP_ID),
        "1780279201",
        "n1",
    )
    assert httpx.post(url, content=body).status_code == 401
    assert calls(qiao_client) == [("callback", "ERROR", None)]


def test_dingtalk_check_url_answers_the_official_vector_and_events_are_kept_once(
    qiao_client: Any, qiao_server: Any, qiao_worker: Any
) -> None:
    token, key, owner = (
        "mryue",
        "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
        "ding6ccabc44d2c8d38b",
    )
    add_connector(
        qiao_client,
        name="dd",
        vendor="DINGTALK",
        settings={"app_key": owner, "agent_id": 1},
        appSecret="s",
        callbackToken=token,
        callbackAesKey=key,
    )
    encrypted = (
        "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBK"
        "yDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3"
    )
    query = {
        "signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
        "timestamp": "1608001896814",
        "nonce": "WL4PK6yA",
    }
    endpoint = f"{qiao_server.url}/connectors/dd/callback"
    answer = httpx.post(endpoint, params=query, content=json.dumps({"encrypt": encrypted}))
    assert answer.status_code == 200
    reply = answer.json()
    crypt = MessageCrypt(token, key, owner)
    opened = crypt.open(
        reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]
    )
    assert opened == b"success"
    event = {
        "EventType": "bpms_instance_change",
        "processInstanceId": "pi-1",
        "type": "finish",
        "result": "agree",
    }
    params, body = push(token, key, owner, event, "1608001900000", "n3")
    for _ in range(2):
        assert httpx.post(endpoint, params=params, content=body).status_code == 200
    drain(qiao_worker)
    assert [c[:2] for c in calls(qiao_client)] == [
        ("callback bpms_instance_change", "OK"),
        ("callback bpms_instance_change", "REPLAY"),
    ]
