"""What stored callbacks mean, acted on in a worker (handler ``connectors.callback``).

WeCom: a text message becomes an activity (kind MESSAGE, channel WeCom) owned by the
member who sent it, or a lead when the connector's ``settings.inbound_messages`` is
``lead``; a 客户联系 event adding or editing a customer (``change_external_contact``)
brings that customer into contacts at once. DingTalk: a finished ``bpms_instance_change``
decides the Qiao approval step delegated to that instance (:mod:`.approvals`); other
events are kept and marked. Each callback record ends ``handled`` with its outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from qiao.api import Actor, Delivery, EventHandler, Runtime, Source
from qiao.plugins.connectors import approvals, clients, host, settings
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import wecom as wecom_sync
from qiao.plugins.connectors.sync.writing import upsert_all

SYSTEM = Actor.system()
HANDLER = "connectors.callback"
CONTACT_CHANGES = {"add_external_contact", "edit_external_contact", "add_half_external_contact"}


def user_of(runtime: Runtime, field: str, value: Any) -> str | None:
    if not value:
        return None
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, "user", filter={field: {"eq": str(value)}}, first=1, actor=SYSTEM
        )
    return str(page.records[0]["id"]) if page.records else None


def wecom_text(runtime: Runtime, connector: Connector, message: dict[str, Any]) -> str:
    content = str(message.get("Content") or "")
    sender = message.get("FromUserName")
    owner = user_of(runtime, "wecom_userid", sender)
    created = dt.datetime.fromtimestamp(int(message.get("CreateTime") or 0), dt.UTC)
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        if connector.settings.get("inbound_messages") == "lead":
            lead = records.create(
                ctx,
                "lead",
                {"name": f"企业微信 {sender}"[:100], "description": content, "owner": owner},
            )
            return f"lead {lead['id']}"
        activity = records.create(
            ctx,
            "activity",
            {
                "kind": "MESSAGE",
                "channel": "WECOM",
                "subject": content[:200] or "企业微信消息",
                "summary": content,
                "occurred_at": created if created.year > 1970 else ctx.now(),
                "owner": owner,
            },
        )
    return f"activity {activity['id']}"


def wecom_contact(runtime: Runtime, connector: Connector, message: dict[str, Any]) -> str:
    external = str(message.get("ExternalUserID") or "")
    owners = wecom_sync.members(runtime)
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        found = clients.wecom(runtime, connector, wiring).external_contact(external)
    follow = next(
        (f for f in found.follow_users if f.get("userid") == message.get("UserID")),
        found.follow_users[0] if found.follow_users else {},
    )
    item = {"external_contact": found.profile, "follow_info": follow}
    values = wecom_sync.contact_of(item, owners)
    upsert_all(
        runtime, connector.id, connector.vendor, "contact", "wecom_external_userid", [values]
    )
    return f"contact {external}"


def act(runtime: Runtime, connector: Connector, message: dict[str, Any]) -> str:
    if connector.vendor == "wecom":
        if message.get("MsgType") == "text":
            return wecom_text(runtime, connector, message)
        if message.get("Event") == "change_external_contact" and (
            message.get("ChangeType") in CONTACT_CHANGES
        ):
            return wecom_contact(runtime, connector, message)
    if (
        connector.vendor == "dingtalk"
        and message.get("EventType") == "bpms_instance_change"
        and message.get("type") in ("finish", "terminate")
    ):
        return approvals.finished(runtime, connector, message)
    return "kept"


def handle(delivery: Delivery) -> None:
    runtime = delivery.runtime
    with runtime.db.read() as conn:
        record = runtime.records.require(
            conn, "connector_callback", delivery.event.record_id, actor=SYSTEM
        )
    if record["handled"]:
        return
    connector = settings.by_id(runtime, str(record["connector_id"]))
    try:
        outcome = act(runtime, connector, json.loads(record["message"] or "{}"))
    except ConnectorError as error:
        raise host.outbox_error(error) from error
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        records.update(
            ctx, "connector_callback", record["id"], {"handled": True, "outcome": outcome}
        )


def handlers() -> list[EventHandler]:
    return [EventHandler(HANDLER, handle, entities=("connector_callback",), operations=("create",))]
