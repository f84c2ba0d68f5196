"""``/intake/<form>``: the public form (GET) and its submission (POST), without sign-in.

A browser gets HTML: the form again with the error beside its field (400),
"too many" (429), or a thank-you page (201). A client that sends JSON or asks
for it gets ``{"error": ..., "field": ...}`` or ``{"status": "received", "id": ...}``,
as the leads form answers. Submissions are created through the records
service as the form's declared actor, so validation, consent rules, audit and
automations apply as to any other write.
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from qiao.core.edge.ratelimit import RateLimiter
from qiao.core.edge.threads import in_thread
from qiao.core.errors import BadUserInput, QiaoError
from qiao.core.intake import links
from qiao.core.intake.forms import IntakeForm, find_form
from qiao.core.intake.page import HONEYPOT, form_page, message_page, thanks_page
from qiao.core.records.context import Actor, Source

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

MAX_BODY_BYTES = 64 * 1024
#: Fields for the ``qiao_intake_challenge`` hook (a CAPTCHA token): checked, never stored.
CHALLENGE = "challenge_"


class _Refused(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


async def show(runtime: Runtime, request: Request) -> Response:
    try:
        form, record_id, shown = await in_thread(_open, runtime, request)
    except _Refused as refused:
        return HTMLResponse(message_page("表单", refused.message), status_code=refused.status)
    entity = runtime.current().entity(form.entity)
    action = links.intake_path(form.secret, form.name, record_id)
    return HTMLResponse(form_page(form, entity, action=action, prefilled=shown))


async def submit(runtime: Runtime, limiter: RateLimiter, request: Request) -> Response:
    wants_json = _wants_json(request)
    payload: dict[str, Any] = {}
    form: IntakeForm | None = None
    record_id = shown = None
    try:
        form, record_id, shown = await in_thread(_open, runtime, request)
        _check_origin(form, request)
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(form.name, client, form.rate_limit_per_minute):
            raise _Refused(429, "提交过于频繁，请一分钟后再试 (too many submissions)")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise _Refused(413, f"the submission is larger than {MAX_BODY_BYTES} bytes")
        payload = _parse(raw, request.headers.get("content-type", ""))
        if payload.get(HONEYPOT):  # a robot: answered as if stored, so it does not learn
            return _received(form, None, wants_json)
        challenged = await in_thread(runtime.plugins.intake_challenge, form.name, payload, client)
        if challenged is not None:
            raise _Refused(400, challenged, "challenge")
        record = await in_thread(_store, runtime, form, record_id, payload)
    except _Refused as refused:
        return _refusal(runtime, form, request, refused, payload, record_id, shown, wants_json)
    except QiaoError as exc:
        refused = _Refused(400, exc.message, exc.field)
        return _refusal(runtime, form, request, refused, payload, record_id, shown, wants_json)
    return _received(form, record["id"], wants_json)


def _open(runtime: Runtime, request: Request) -> tuple[IntakeForm, str | None, str | None]:
    """The form, the signed record it is opened for, and that record's name to show."""
    catalog = runtime.current()
    with runtime.db.read() as conn:
        form = find_form(conn, catalog, request.path_params["name"])
        if form is None:
            raise _Refused(404, "没有这个表单 (no such form)")
        record_id = request.query_params.get("r")
        signature = request.query_params.get("s", "")
        if record_id is None:
            if form.link_required:
                raise _Refused(403, "请扫描二维码打开此表单 (open this form from its link)")
            return form, None, None
        if not form.prefill or not links.verify(form.secret, form.name, record_id, signature):
            raise _Refused(403, "链接无效 (this link is not valid)")
        field = catalog.entity(form.entity).field(form.prefill)
        assert field is not None and field.target is not None
        target = runtime.records.get(conn, field.target, record_id, actor=Actor.system())
        if target is None:
            raise _Refused(404, "链接所指的记录不存在 (the linked record is gone)")
        display = catalog.entity(field.target).display_field
        return form, record_id, str(target.get(display) or "") if display else None


def _check_origin(form: IntakeForm, request: Request) -> None:
    origin = request.headers.get("origin")
    own = str(request.base_url).rstrip("/")
    if origin is None or origin == own or "*" in form.allowed_origins:
        return
    if origin not in form.allowed_origins:
        raise _Refused(403, "this origin may not post to the form")


def _store(
    runtime: Runtime, form: IntakeForm, record_id: str | None, payload: dict[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = dict(form.defaults)
    for key, value in payload.items():
        if key == HONEYPOT or key.startswith(CHALLENGE):
            continue
        if key not in form.fields:
            raise BadUserInput(f"this form has no field {key!r}", field=key)
        if value not in (None, ""):
            values[key] = value
    if record_id is not None and form.prefill:
        values[form.prefill] = record_id
    records = runtime.records
    actor = Actor(user_id=None, username=form.actor, is_admin=True)
    with records.transaction(actor, Source.INTAKE) as ctx:
        return records.create(ctx, form.entity, values)


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    if content_type.startswith("application/json"):
        try:
            payload = json.loads(text)
        except ValueError:
            raise _Refused(400, "the body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _Refused(400, "the body must be a JSON object")
        return payload
    if content_type.startswith("application/x-www-form-urlencoded") or not content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    raise _Refused(400, "send application/x-www-form-urlencoded or application/json")


def _wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(
        "application/json"
    ) or "application/json" in request.headers.get("accept", "")


def _received(form: IntakeForm, record_id: str | None, wants_json: bool) -> Response:
    if wants_json:
        return JSONResponse({"status": "received", "id": record_id}, status_code=201)
    return HTMLResponse(thanks_page(form), status_code=201)


def _refusal(
    runtime: Runtime,
    form: IntakeForm | None,
    request: Request,
    refused: _Refused,
    payload: dict[str, Any],
    record_id: str | None,
    shown: str | None,
    wants_json: bool,
) -> Response:
    headers = {"Retry-After": "60"} if refused.status == 429 else None
    if wants_json:
        body = {"error": refused.message} | ({"field": refused.field} if refused.field else {})
        return JSONResponse(body, status_code=refused.status, headers=headers)
    if form is None or refused.status != 400:
        return HTMLResponse(
            message_page("表单", refused.message), status_code=refused.status, headers=headers
        )
    entity = runtime.current().entity(form.entity)
    page = form_page(
        form,
        entity,
        action=links.intake_path(form.secret, form.name, record_id),
        prefilled=shown,
        values=payload,
        error=refused.message,
        error_field=refused.field,
    )
    return HTMLResponse(page, status_code=400)


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public intake routes, bound to ``runtime`` and counting submissions for it."""
    limiter = RateLimiter()
    return [
        Route("/intake/{name}", partial(show, runtime), methods=["GET"]),
        Route("/intake/{name}", partial(submit, runtime, limiter), methods=["POST"]),
    ]
