"""Approval steps delegated to DingTalk (审批): a process instance per step, its result back.

A DingTalk connector's ``settings.approvals`` maps Qiao approval processes by name:

    {"合同用印": {"process_code": "PROC-…", "decided_by": "dingtalk",
                 "form": {"合同名称": "name", "金额": "amount"}}}

When a request of that process waits at a step (submitted, or moved to its next step), a
worker (handler ``connectors.approval``) starts an instance of ``process_code`` with the
submitter's ``dingtalk_userid`` as originator and the form's labels filled from the
record's fields, and keeps the pair in a ``connector_link``. When DingTalk reports the
instance finished (``bpms_instance_change``, received by the callback route), the
instance is read back and its result decides the step in Qiao as the user
``decided_by``, who must be that step's approver (``{"user": "dingtalk"}``): agree
approves, refuse, termination or cancelling rejects, each with the instance id in the
comment. So a decision taken in DingTalk is recorded as the integration's, named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qiao.api import (
    Actor,
    ConfigurationError,
    Conflict,
    Delivery,
    Event,
    EventHandler,
    Runtime,
    Source,
    decide_approval,
)
from qiao.plugins.connectors import clients, host, settings
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.dingtalk.approvals import Outcome
from qiao.plugins.connectors.settings import Connector

SYSTEM = Actor.system()
HANDLER = "connectors.approval"


def link_key(instance_id: str) -> str:
    return f"dingtalk:{instance_id}"


def _one(runtime: Runtime, conn: Any, entity: str, filter: Mapping[str, Any]) -> Any:
    page = runtime.records.list(conn, entity, filter=dict(filter), first=1, actor=SYSTEM)
    return page.records[0] if page.records else None


def delegation(runtime: Runtime, process_id: str) -> tuple[Connector, str, dict[str, Any]] | None:
    """The DingTalk connector and settings a process is delegated to, if any."""
    with runtime.db.read() as conn:
        process = runtime.records.require(conn, "approval_process", process_id, actor=SYSTEM)
    for connector in settings.active_of(runtime, "dingtalk"):
        spec = (connector.settings.get("approvals") or {}).get(process["name"])
        if spec:
            return connector, str(process["name"]), dict(spec)
    return None


def waiting(event: Event) -> bool:
    return event.operation == "create" or "step" in event.changes


def start(delivery: Delivery) -> None:
    """Start a DingTalk instance for the step a request now waits at (once per step)."""
    runtime = delivery.runtime
    with runtime.db.read() as conn:
        request = runtime.records.require(
            conn, "approval_request", delivery.event.record_id, actor=SYSTEM
        )
    if request["status"] != "PENDING":
        return
    found = delegation(runtime, str(request["process_id"]))
    if found is None:
        return
    connector, process, spec = found
    with runtime.db.read() as conn:
        done = _one(
            runtime,
            conn,
            "connector_link",
            {"record_id": {"eq": request["id"]}, "step": {"eq": request["step"]}},
        )
        record = runtime.records.require(
            conn, request["entity"], request["record_id"], actor=SYSTEM
        )
        owner = (
            runtime.records.require(conn, "user", request["owner_id"], actor=SYSTEM)
            if request.get("owner_id")
            else {}
        )
    if done is not None:
        return
    originator = owner.get("dingtalk_userid") or connector.settings.get("originator")
    if not originator:
        raise ConfigurationError(
            f"approval {process}: the submitter has no dingtalk_userid and the connector "
            f"{connector.name!r} no settings.originator"
        )
    form = [
        (str(label), "" if record.get(field) is None else str(record[field]))
        for label, field in (spec.get("form") or {}).items()
    ]
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.dingtalk(runtime, connector, wiring)
        try:
            instance = client.create_approval(str(spec["process_code"]), str(originator), form)
        except ConnectorError as error:
            raise host.outbox_error(error) from error
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        records.create(
            ctx,
            "connector_link",
            {
                "key": link_key(instance),
                "connector": connector.id,
                "entity": "approval_request",
                "record_id": request["id"],
                "step": request["step"],
                "external_id": instance,
            },
        )


DECISIONS = {
    Outcome.APPROVED: ("APPROVED", "同意"),
    Outcome.REFUSED: ("REJECTED", "拒绝"),
    Outcome.TERMINATED: ("REJECTED", "已终止"),
    Outcome.CANCELED: ("REJECTED", "已撤销"),
}


def finished(runtime: Runtime, connector: Connector, message: Mapping[str, Any]) -> str:
    """A ``bpms_instance_change`` callback: decide the linked step from the instance."""
    instance_id = str(message.get("processInstanceId") or "")
    with runtime.db.read() as conn:
        link = _one(runtime, conn, "connector_link", {"key": {"eq": link_key(instance_id)}})
    if link is None:
        return f"instance {instance_id} is not Qiao's"
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        instance = clients.dingtalk(runtime, connector, wiring).approval(instance_id)
    if instance.outcome is Outcome.PENDING:
        return f"instance {instance_id} still running"
    decision, word = DECISIONS[instance.outcome]
    records = runtime.records
    with runtime.db.read() as conn:
        request = runtime.records.require(conn, "approval_request", link["record_id"], actor=SYSTEM)
    if request["status"] != "PENDING" or request["step"] != link["step"]:
        return f"step {link['step']} was decided in Qiao already"
    found = delegation(runtime, str(request["process_id"]))
    username = str((found[2] if found else {}).get("decided_by") or "")
    with runtime.db.read() as conn:
        user = _one(runtime, conn, "user", {"username": {"eq": username}})
    if user is None:
        raise ConfigurationError(f"approvals: decided_by names no user ({username!r})")
    actor = Actor(user_id=str(user["id"]), username=username)
    try:
        with records.transaction(actor, Source.CONNECTOR) as ctx:
            decide_approval(ctx, request["id"], decision, f"钉钉审批 {instance_id}：{word}")
    except Conflict:
        return f"step {link['step']} was decided in Qiao already"
    return f"{decision.lower()} step {link['step']} of request {request['id']}"


def handlers() -> list[EventHandler]:
    return [
        EventHandler(
            HANDLER,
            start,
            entities=("approval_request",),
            operations=("create", "update"),
            when=waiting,
        )
    ]
