"""WeCom app messages, DingTalk work notices and e-mail as notification channels.

Every ``notification`` record (written by automation rules' ``notify`` and ``escalate``
actions, lead assignments, approvals ...) is delivered by each channel in a worker, with
the outbox's retries and dead letters (handlers ``notify.wecom`` and ``notify.dingtalk``).
A channel sends through the first active connector of its vendor, to the recipient's
``wecom_userid`` / ``dingtalk_userid``; a recipient without one gets the in-app
notification only. What the vendor did is in the sync log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qiao.api import Actor, Delivery, Runtime
from qiao.plugins.connectors import clients, host, settings
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.email.smtp import Mail
from qiao.plugins.connectors.wecom.messages import Recipients, SendOptions, Text, TextCard

SYSTEM = Actor.system()

#: WeCom drops a repeat of the same content to the same user within this window, which
#: makes a retried delivery (a worker that died after sending) safe.
DUPLICATE_CHECK_SECONDS = 4 * 3600

#: WeCom silently drops app messages to a member past 30 a minute or 1,000 an hour; the
#: channel holds them back instead (per process), and the outbox sends them later.
MEMBER_RATES = (Rate(30, 60), Rate(1000, 3600))


def member_limits(runtime: Runtime, connector: settings.Connector) -> RateLimits:
    return runtime.state(
        f"connectors.members.{connector.id}",
        lambda rt: RateLimits(lambda: host.epoch(rt), host.never_wait("wecom"), MEMBER_RATES),
    )


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def vendor_user(runtime: Runtime, user_id: str, field: str) -> str | None:
    with runtime.db.read() as conn:
        user = runtime.records.require(conn, "user", user_id, actor=SYSTEM)
    value = user.get(field)
    return str(value) if value else None


def link_of(connector: settings.Connector, notification: Mapping[str, Any]) -> str | None:
    """The app's page of the record the notification is about, when ``link_base`` is set."""
    base = connector.settings.get("link_base")
    entity, record = notification.get("link_entity"), notification.get("link_id")
    if not base or not entity or not record:
        return None
    return f"{str(base).rstrip('/')}/{entity}/{record}"


class WeComChannel:
    """App messages: a text card when the notification links to a page, else text."""

    name = "wecom"

    def send(self, delivery: Delivery, notification: Mapping[str, Any]) -> None:
        runtime = delivery.runtime
        connectors = settings.active_of(runtime, "wecom")
        if not connectors:
            return
        userid = vendor_user(runtime, str(notification["owner_id"]), "wecom_userid")
        if userid is None:
            return
        connector = connectors[0]
        title, body = str(notification.get("title") or ""), str(notification.get("body") or "")
        url = link_of(connector, notification)
        message: Text | TextCard = (
            TextCard(clip(title, 128), clip(body or title, 512), url)
            if url
            else Text(clip("\n".join(p for p in (title, body) if p), 2048))
        )
        with host.wired(runtime, connector.id, connector.vendor) as wiring:
            client = clients.wecom(runtime, connector, wiring)
            try:
                member_limits(runtime, connector).acquire(userid)
                client.send_message(
                    Recipients(users=(userid,)),
                    message,
                    SendOptions(duplicate_check_seconds=DUPLICATE_CHECK_SECONDS),
                )
            except ConnectorError as error:
                raise host.outbox_error(error) from error


class DingTalkChannel:
    """Work notices (工作通知): an ``action_card`` when the notification links to a page."""

    name = "dingtalk"

    def send(self, delivery: Delivery, notification: Mapping[str, Any]) -> None:
        runtime = delivery.runtime
        connectors = settings.active_of(runtime, "dingtalk")
        if not connectors:
            return
        userid = vendor_user(runtime, str(notification["owner_id"]), "dingtalk_userid")
        if userid is None:
            return
        connector = connectors[0]
        title, body = str(notification.get("title") or ""), str(notification.get("body") or "")
        url = link_of(connector, notification)
        msg: dict[str, Any] = (
            {
                "msgtype": "action_card",
                "action_card": {
                    "title": title,
                    "markdown": f"### {title}\n\n{body}",
                    "single_title": "查看详情",
                    "single_url": url,
                },
            }
            if url
            else {"msgtype": "text", "text": {"content": "\n".join(p for p in (title, body) if p)}}
        )
        with host.wired(runtime, connector.id, connector.vendor) as wiring:
            client = clients.dingtalk(runtime, connector, wiring)
            try:
                client.send_work_notice(int(connector.setting("agent_id")), msg, users=(userid,))
            except ConnectorError as error:
                raise host.outbox_error(error) from error


class EmailChannel:
    """Mail to the recipient's ``email``, through the first active ``email`` connector."""

    name = "email"

    def send(self, delivery: Delivery, notification: Mapping[str, Any]) -> None:
        runtime = delivery.runtime
        connectors = settings.active_of(runtime, "email")
        if not connectors:
            return
        address = vendor_user(runtime, str(notification["owner_id"]), "email")
        if address is None:
            return
        connector = connectors[0]
        title, body = str(notification.get("title") or ""), str(notification.get("body") or "")
        url = link_of(connector, notification)
        text = "\n\n".join(p for p in (body or title, url) if p)
        with host.wired(runtime, connector.id, connector.vendor) as wiring:
            sender = clients.smtp(runtime, connector, wiring)
            try:
                sender.send(Mail(to=(address,), subject=title, text=text))
            except ConnectorError as error:
                raise host.outbox_error(error) from error
