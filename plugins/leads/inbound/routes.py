"""HTTP endpoints: the public form, its embeddable script, and the signed webhook.

Both endpoints answer only after the lead is committed (tagged, checked for
duplicates and assigned by the write hooks in the same transaction), so a
201 means the lead is stored. Errors are JSON ``{"error": ..., "field": ...}``
with a status that says what to fix: 400 bad input, 401 bad signature,
403 origin not allowed, 404 unknown channel, 413 too large, 429 too many, 503 the
channel changed twice while the call was judged (send it again).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from qiao.api import Actor, BadUserInput, QiaoError, RateLimiter, Record, Runtime, Source, in_thread
from qiao.plugins.leads.importing.mapping import Suggester
from qiao.plugins.leads.inbound import channels, coalesce, signatures
from qiao.plugins.leads.inbound.snippet import embed_script

MAX_BODY_BYTES = 64 * 1024
#: Times a webhook call is judged when its channel keeps changing under it (then 503).
CHANGE_RETRIES = 2
#: The hidden form field that people leave empty and form-filling robots do not.
HONEYPOT = "website_url"
_limiter = RateLimiter()


def _error(status: int, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers or None)


def lead_values(channel: Record, payload: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """A submission's fields as lead values; fields no lead field takes go to the description."""
    suggester = Suggester.of(runtime.current().entity("lead"))
    values: dict[str, Any] = {**(channel["defaults"] or {})}
    extra: list[str] = []
    for key, value in payload.items():
        if key == HONEYPOT or value in (None, ""):
            continue
        target = suggester.field_for(key)
        if target is None or target in values or not isinstance(value, str | int | float):
            extra.append(f"{key}: {value}")
        else:
            values[target] = str(value) if target != "intent_score" else value
    if extra:
        values["description"] = "\n".join([*filter(None, [values.get("description")]), *extra])
    values["source"] = channel["source"]
    values["channel"] = channel["id"]
    return values


def _store(runtime: Runtime, channel: Record, values: dict[str, Any]) -> Record:
    records = runtime.records
    with records.transaction(channels.channel_actor(channel), Source.CONNECTOR) as ctx:
        return records.create(ctx, "lead", values)


# -- The form -----------------------------------------------------------------------------


def _cors(channel: Record, origin: str | None) -> dict[str, str] | None:
    """CORS headers for an allowed origin, ``{}`` without an Origin, None when refused."""
    if origin is None:
        return {}
    allowed = channel["allowed_origins"] or []
    if origin not in allowed and "*" not in allowed:
        return None
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


async def form_submit(runtime: Runtime, request: Request) -> Response:
    channel = await in_thread(channels.find, runtime, request.path_params["key"], "FORM")
    if channel is None:
        return _error(404, "no active form with this key")
    headers = _cors(channel, request.headers.get("origin"))
    if headers is None:
        return _error(403, "this origin may not post to the form")
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=headers)
    client = request.client.host if request.client else "unknown"
    if not _limiter.allow(channel["id"], client, channel["rate_limit_per_minute"]):
        return _error(
            429, "too many submissions; try again in a minute", **headers, **{"Retry-After": "60"}
        )
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, f"the submission is larger than {MAX_BODY_BYTES} bytes", **headers)
    try:
        payload = _parse_form(raw, request.headers.get("content-type", ""))
    except BadUserInput as exc:
        return _error(400, exc.message, **headers)
    if payload.get(HONEYPOT):
        # Answer a robot as if it succeeded, so it does not learn to leave the field empty.
        return JSONResponse({"status": "received"}, status_code=201, headers=headers)
    try:
        lead = await in_thread(
            lambda: _store(runtime, channel, lead_values(channel, payload, runtime))
        )
    except QiaoError as exc:
        return _error(400, exc.message, exc.field, **headers)
    return JSONResponse({"status": "received", "id": lead["id"]}, status_code=201, headers=headers)


def _parse_form(raw: bytes, content_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    if content_type.startswith("application/json"):
        try:
            payload = json.loads(text)
        except ValueError:
            raise BadUserInput("the body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise BadUserInput("the body must be a JSON object")
        return payload
    if content_type.startswith("application/x-www-form-urlencoded") or not content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    raise BadUserInput("send application/x-www-form-urlencoded or application/json")


async def form_script(runtime: Runtime, request: Request) -> Response:
    key = request.path_params["key"]
    channel = await in_thread(channels.find, runtime, key, "FORM")
    if channel is None:
        return _error(404, "no active form with this key")
    base = str(request.base_url).rstrip("/")
    return Response(
        embed_script(f"{base}/leads/forms/{key}", HONEYPOT),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


# -- The webhook --------------------------------------------------------------------------


async def webhook(
    runtime: Runtime,
    coalescer: coalesce.Coalescer,
    known: channels.KnownChannels,
    request: Request,
) -> Response:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, f"the payload is larger than {MAX_BODY_BYTES} bytes")
    message_id = request.headers.get("webhook-id")
    timestamp = request.headers.get("webhook-timestamp")
    signature = request.headers.get("webhook-signature")
    if not (message_id and timestamp and signature):
        return _error(
            400, "webhook-id, webhook-timestamp and webhook-signature headers are required"
        )
    call = _WebhookCall(request.path_params["key"], message_id, timestamp, signature, raw)
    return await in_thread(_accept, runtime, coalescer, known, call)


@dataclass(frozen=True)
class _WebhookCall:
    """What a webhook call brought: its channel's key, headers and body."""

    key: str
    message_id: str
    timestamp: str
    signature: str
    raw: bytes


def _accept(
    runtime: Runtime,
    coalescer: coalesce.Coalescer,
    known: channels.KnownChannels,
    call: _WebhookCall,
) -> Response:
    """A webhook call from its channel's lookup to its answer, in one worker thread (each
    hop between the event loop and a thread waits its turn behind the other calls).

    The channel comes from the process's :class:`~.channels.KnownChannels`; if it changed
    since, nothing was stored and the call is judged again against a fresh lookup.
    """
    for _ in range(CHANGE_RETRIES):
        try:
            return _judge(runtime, coalescer, known, call)
        except channels.ChannelChanged as changed:
            known.forget(changed.channel)
    return _error(
        503, "the webhook's channel is being changed; send the call again", **{"Retry-After": "1"}
    )


def _judge(
    runtime: Runtime,
    coalescer: coalesce.Coalescer,
    known: channels.KnownChannels,
    call: _WebhookCall,
) -> Response:
    channel = known.find(call.key, "WEBHOOK")
    if channel is None or not channel["secret"]:
        return _error(404, "no active webhook with this key")
    message_id, raw = call.message_id, call.raw
    try:
        signatures.verify(
            channel["secret"], message_id, call.timestamp, raw, call.signature, time.time()
        )
    except signatures.TimestampError as exc:
        return _error(400, str(exc), "webhook-timestamp")
    except signatures.SignatureError as exc:
        return _error(401, str(exc), "webhook-signature")
    try:
        payload = json.loads(raw)
    except ValueError:
        return _error(400, "the payload is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "the payload must be a JSON object")
    inner = payload.get("data")
    data: dict[str, Any] = inner if isinstance(inner, dict) else payload
    try:
        status, lead_id = coalescer.receive(
            channel, message_id, data, lead_values(channel, data, runtime)
        )
    except QiaoError as exc:
        return _error(400, exc.message, exc.field)
    body = {"status": status, "id": lead_id}
    return JSONResponse(body, status_code=201 if status == "received" else 200)


def _receive(
    runtime: Runtime, channel: Record, message_id: str, data: dict[str, Any]
) -> tuple[str, str | None]:
    """Store the lead and its receipt together; a replayed webhook-id stores nothing.

    The path of a lead stored alone: webhook calls go through the process's
    :class:`~.coalesce.Coalescer`, which stores leads arriving together in one
    transaction and comes here for each lead of a batch refused as a whole.
    """
    records = runtime.records
    message_key = coalesce.receipt_key(channel, message_id)
    with records.transaction(channels.channel_actor(channel), Source.CONNECTOR) as ctx:
        channels.require_unchanged(ctx, [channel])
        seen = records.list(
            ctx.connection,
            "lead_webhook_receipt",
            filter={"message_key": {"eq": message_key}},
            first=1,
            actor=Actor.system(),
        )
        if seen.records:
            return "duplicate", seen.records[0]["lead_id"]
        lead = records.create(ctx, "lead", lead_values(channel, data, runtime))
        records.create(
            ctx,
            "lead_webhook_receipt",
            {"message_key": message_key, "channel": channel["id"], "lead": lead["id"]},
        )
        return "received", lead["id"]


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public lead routes, bound to ``runtime``."""
    coalescer = coalesce.Coalescer(runtime, _receive)
    known = channels.KnownChannels(runtime)
    return [
        Route("/leads/forms/{key}", partial(form_submit, runtime), methods=["POST", "OPTIONS"]),
        Route("/leads/forms/{key}/embed.js", partial(form_script, runtime), methods=["GET"]),
        Route(
            "/leads/webhooks/{key}",
            partial(webhook, runtime, coalescer, known),
            methods=["POST"],
        ),
    ]
