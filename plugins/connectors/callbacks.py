"""Callback routes: WeCom and DingTalk push events to Qiao, signed and encrypted.

``/connectors/{name}/callback`` verifies the signature and decrypts with the connector's
``callback_token`` and ``callback_aes_key`` (the ciphers of
:mod:`~qiao.plugins.connectors.wecom.callback` and ``dingtalk.callback``, checked against
the vendors' official vectors), then stores the message as a ``connector_callback``
record keyed by its replay key and answers at once, inside the vendors' deadlines (5 s,
1.5 s). A replayed message meets that unique key and is answered without being stored
again; the sync log lists it as ``REPLAY``. What a message means is done later, in a
worker, from the record's create event (:mod:`.inbound`): nothing is lost if the worker
is busy or down, and a failure is retried and dead-lettered like any delivery.

Answers: 200 with the vendor's reply; 400 for a body that does not decrypt; 401 for a bad
signature; 404 for an unknown or inactive connector, or one without callback secrets.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from qiao.api import Actor, Conflict, NotFound, QiaoError, Runtime, Source, in_thread
from qiao.plugins.connectors import settings
from qiao.plugins.connectors.common.calls import payload_hash
from qiao.plugins.connectors.common.errors import CallbackError, CallbackSignatureError
from qiao.plugins.connectors.common.replay import Inbound
from qiao.plugins.connectors.dingtalk.callback import DingTalkCallback
from qiao.plugins.connectors.host import epoch
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.wecom.callback import WeComCallback

SYSTEM = Actor.system()
VENDORS = ("wecom", "dingtalk")


class AlwaysFirst:
    """Replays are refused by ``connector_callback``'s unique key, not in memory."""

    def first(self, key: str, now: float) -> bool:
        return True


def connector_for(runtime: Runtime, name: str) -> Connector:
    connector = settings.by_name(runtime, name)
    if connector.vendor not in VENDORS or not connector.active:
        raise NotFound(f"no callback at {name!r}")
    if "callback_token" not in connector.secrets or "callback_aes_key" not in connector.secrets:
        raise NotFound(f"connector {name!r} has no callback secrets set")
    return connector


def wecom_of(runtime: Runtime, connector: Connector) -> WeComCallback:
    return WeComCallback(
        connector.secret("callback_token"),
        connector.secret("callback_aes_key"),
        str(connector.setting("corp_id")),
        seen=AlwaysFirst(),
        clock=lambda: epoch(runtime),
    )


def dingtalk_of(runtime: Runtime, connector: Connector) -> DingTalkCallback:
    owner = connector.settings.get("callback_owner") or connector.setting("app_key")
    return DingTalkCallback(
        connector.secret("callback_token"),
        connector.secret("callback_aes_key"),
        str(owner),
        seen=AlwaysFirst(),
        clock=lambda: epoch(runtime),
    )


def kind_of(message: dict[str, Any]) -> str:
    for key in ("EventType", "Event", "MsgType", "event", "msgtype"):
        if message.get(key):
            return str(message[key])[:64]
    return "message"


def store(runtime: Runtime, connector: Connector, inbound: Inbound) -> bool:
    """Keep a first delivery for the worker; False (and a REPLAY log entry) for a replay."""
    records = runtime.records
    message = json.dumps(inbound.message, ensure_ascii=False, sort_keys=True)
    kind = kind_of(inbound.message)
    try:
        with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
            records.create(
                ctx,
                "connector_callback",
                {"key": inbound.key, "connector": connector.id, "kind": kind, "message": message},
            )
            log(ctx, records, connector, kind, "OK", message)
    except Conflict:
        with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
            log(ctx, records, connector, kind, "REPLAY", message)
        return False
    return True


def log(ctx: Any, records: Any, connector: Connector, kind: str, status: str, body: str) -> None:
    records.create(
        ctx,
        "connector_call",
        {
            "connector": connector.id,
            "direction": "IN",
            "operation": f"callback {kind}",
            "status": status,
            "at": ctx.now(),
            "attempt": 1,
            "payload_sha256": payload_hash(body),
        },
    )


def refuse(runtime: Runtime, connector: Connector, error: CallbackError) -> None:
    """A callback that failed its signature or decryption, in the sync log."""
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        records.create(
            ctx,
            "connector_call",
            {
                "connector": connector.id,
                "direction": "IN",
                "operation": "callback",
                "status": "ERROR",
                "at": ctx.now(),
                "attempt": 1,
                "error_type": type(error).__name__,
                "detail": str(error)[:300],
            },
        )


def _receive(
    runtime: Runtime, name: str, method: str, query: dict[str, str], body: bytes
) -> Response:
    connector = connector_for(runtime, name)
    try:
        if connector.vendor == "wecom":
            wecom = wecom_of(runtime, connector)
            sign = (
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
            if method == "GET":
                return PlainTextResponse(wecom.verify_url(*sign, query.get("echostr", "")))
            json_format = connector.settings.get("callback_format") == "json"
            inbound = (wecom.receive_json if json_format else wecom.receive_xml)(*sign, body)
            store(runtime, connector, inbound)
            return PlainTextResponse("success")
        dingtalk = dingtalk_of(runtime, connector)
        inbound = dingtalk.receive(query, body)
        if inbound.message.get("EventType") != "check_url":
            store(runtime, connector, inbound)
        return JSONResponse(dingtalk.reply_success())
    except CallbackError as error:
        refuse(runtime, connector, error)
        status = 401 if isinstance(error, CallbackSignatureError) else 400
        return JSONResponse({"error": str(error)}, status_code=status)


async def callback(runtime: Runtime, request: Request) -> Response:
    body = await request.body()
    try:
        return await in_thread(
            _receive,
            runtime,
            request.path_params["name"],
            request.method,
            dict(request.query_params),
            body,
        )
    except QiaoError as error:
        status = 404 if isinstance(error, NotFound) else 400
        return JSONResponse({"error": str(error)}, status_code=status)


def routes(runtime: Runtime) -> list[BaseRoute]:
    return [
        Route(
            "/connectors/{name}/callback",
            partial(callback, runtime),
            methods=["GET", "POST"],
        )
    ]
