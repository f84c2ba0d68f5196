"""WeCom and DingTalk as notification channels, through the worker, against the fakes."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller

from qiao.core.events.queue import list_deliveries
from qiao.core.testing.clock import TestClock
from qiao.core.testing.deployment import free_port
from qiao.core.testing.worker import drain

from .deployment import add_connector, add_wecom, admin_id, calls, notify, set_user
from .fakes import dingtalk as dingtalk_fake
from .fakes.dingtalk import FakeDingTalk
from .fakes.wecom import FakeWeCom
from .test_email import Inbox, authenticate


def test_a_notification_reaches_the_users_wecom(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom, clock: TestClock
) -> None:
    add_wecom(qiao_client, wecom, link_base="https://crm.example.cn/app")
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="zhangsan")
    notify(qiao_client, admin, "新服务工单：主轴异响", "客户 华东精工")
    drain(qiao_worker)
    assert len(wecom.sent) == 1
    sent = wecom.sent[0]
    assert sent["to"] == ["zhangsan"] and sent["msgtype"] == "text"
    assert sent["text"]["content"] == "新服务工单：主轴异响\n客户 华东精工"
    assert sent["enable_duplicate_check"] == 1
    assert calls(qiao_client) == [("gettoken", "OK", None), ("message/send", "OK", None)]


def test_an_expired_token_is_refreshed_once_and_shared(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    add_wecom(qiao_client, wecom)
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="zhangsan")
    notify(qiao_client, admin, "第一条")
    drain(qiao_worker)
    wecom.revoke_tokens(42001)
    notify(qiao_client, admin, "第二条")
    drain(qiao_worker)
    assert [m["text"]["content"] for m in wecom.sent] == ["第一条", "第二条"]
    assert wecom.issued == 2
    assert calls(qiao_client)[2:] == [
        ("message/send", "ERROR", "42001"),
        ("gettoken", "OK", None),
        ("message/send", "OK", None),
    ]


def test_a_recipient_wecom_refuses_is_a_dead_letter_at_once(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom, qiao_runtime: Any
) -> None:
    add_wecom(qiao_client, wecom)
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="nobody")  # not a member of the corp
    notify(qiao_client, admin, "无人可达")
    drain(qiao_worker)
    log = calls(qiao_client)
    assert ("message/send", "ERROR", "81013") in log
    with qiao_runtime.db.read() as conn:
        dead = list_deliveries(conn, statuses=("dead",))
    assert [d["handler"] for d in dead] == ["notify.wecom"]
    assert "81013" in dead[0]["last_error"]


def test_a_frequency_limit_retries_when_the_minute_is_over(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom, clock: TestClock
) -> None:
    add_wecom(qiao_client, wecom)
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="zhangsan")
    wecom.fail("/cgi-bin/message/send", {"errcode": 45009, "errmsg": "api freq out of limit"})
    notify(qiao_client, admin, "限频后重试")
    drain(qiao_worker)
    assert wecom.sent == []
    clock.advance(seconds=61)
    drain(qiao_worker)
    assert [m["text"]["content"] for m in wecom.sent] == ["限频后重试"]


def test_users_without_a_wecom_id_get_the_in_app_notification_only(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    add_wecom(qiao_client, wecom)
    notify(qiao_client, admin_id(qiao_client), "仅站内")
    drain(qiao_worker)
    assert wecom.sent == [] and calls(qiao_client) == []


def test_a_notification_reaches_the_users_dingtalk(
    qiao_client: Any, qiao_worker: Any, dingtalk: FakeDingTalk
) -> None:
    add_connector(
        qiao_client,
        name="钉钉",
        vendor="DINGTALK",
        baseUrl=dingtalk.url,
        settings={"app_key": dingtalk_fake.APP_KEY, "agent_id": dingtalk_fake.AGENT_ID},
        appSecret=dingtalk_fake.APP_SECRET,
    )
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, dingtalkUserid="manager1")
    notify(qiao_client, admin, "合同待盖章", "华东精工 年度框架合同")
    drain(qiao_worker)
    assert len(dingtalk.notices) == 1
    notice = dingtalk.notices[0]
    assert notice["userid_list"] == "manager1"
    assert notice["msg"] == {
        "msgtype": "text",
        "text": {"content": "合同待盖章\n华东精工 年度框架合同"},
    }
    assert [c[:2] for c in calls(qiao_client)] == [
        ("oauth2/accessToken", "OK"),
        ("message/corpconversation/asyncsend_v2", "OK"),
    ]


def test_a_notification_reaches_the_users_mailbox(qiao_client: Any, qiao_worker: Any) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        add_connector(
            qiao_client,
            name="邮件",
            vendor="EMAIL",
            settings={
                "host": "127.0.0.1",
                "port": port,
                "sender": "crm@example.cn",
                "username": "crm",
                "security": "none",
                "link_base": "https://crm.example.cn/app",
            },
            appSecret="pw",
        )
        admin = admin_id(qiao_client)
        set_user(qiao_client, admin, email="li.na@example.cn")
        notify(qiao_client, admin, "报价待审批", "宁波精工 Q-2026-001")
        drain(qiao_worker)
    finally:
        controller.stop()
    [(to, message)] = inbox.received
    assert to == ["li.na@example.cn"] and message["Subject"] == "报价待审批"
    assert message.get_content().strip() == "宁波精工 Q-2026-001"
    assert [c[:2] for c in calls(qiao_client)] == [("send", "OK")]


def test_a_members_per_minute_limit_holds_messages_back_instead_of_losing_them(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom, clock: TestClock
) -> None:
    add_wecom(qiao_client, wecom)
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="zhangsan")
    for i in range(16):
        notify(qiao_client, admin, f"第{i}条")
    drain(qiao_worker)
    assert len(wecom.sent) == 15  # never more than 30 in any minute (half, sustained)
    clock.advance(seconds=5)
    drain(qiao_worker)
    assert len(wecom.sent) == 16
