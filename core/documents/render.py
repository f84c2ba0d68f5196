"""Fill a document template with one record and keep the result as a ``document``.

The record is read as the caller, so a document shows exactly what they may
see (hidden fields are absent, masked ones masked: docs/privacy.md). Templates
are data that administrators edit, so they run in Jinja2's sandbox with
autoescaping; an undefined name is an error rather than a blank in a report.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from qiao.core.catalog import Catalog
from qiao.core.documents.pdf import html_to_pdf
from qiao.core.documents.qr import qr_png, qr_svg
from qiao.core.documents.templates import DocumentTemplateDecl, find_template
from qiao.core.documents.views import RecordViews
from qiao.core.errors import BadUserInput, NotFound
from qiao.core.intake.forms import find_form
from qiao.core.intake.links import intake_path
from qiao.core.notifications import notify, user_ids
from qiao.core.records.context import WriteContext

ZONE = ZoneInfo("Asia/Shanghai")
HTML = "text/html; charset=utf-8"
PDF = "application/pdf"
_ENV = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def render_document(
    context: WriteContext,
    template_name: str,
    record_id: str,
    base_url: str | None = None,
    send_to: Sequence[str] = (),
) -> dict[str, Any]:
    """Render ``template_name`` for the record and store it; returns the ``document`` record.

    ``send_to`` (usernames) each get a notification linking the document, which
    the deployment's notification channels (WeCom, e-mail...) deliver.
    """
    conn, catalog = context.connection, context.catalog
    template = find_template(conn, catalog, template_name)
    if template is None:
        raise NotFound(f"no document template {template_name!r}", field="template")
    record = context.records.get(conn, template.entity, record_id, actor=context.actor)
    if record is None:
        raise NotFound(f"no {template.entity} with id {record_id}", field="id")
    variables = _variables(context, catalog, template, record, base_url)
    try:
        content = _ENV.from_string(template.body).render(variables)
        filename = _ENV.from_string(template.filename).render(variables).strip()
    except TemplateError as exc:
        raise BadUserInput(f"document template {template.name}: {exc}", field="template") from None
    if not filename or "/" in filename or "\\" in filename:
        raise BadUserInput(f"document template {template.name}: bad file name {filename!r}")
    content_type = HTML
    if template.format == "pdf":
        content = base64.b64encode(html_to_pdf(content, template.title)).decode("ascii")
        content_type = PDF
    recipients = user_ids(conn, catalog, send_to)
    if len(recipients) != len(set(send_to)):
        raise BadUserInput("sendTo: every recipient must be an active user's name", field="sendTo")
    document = context.records.create(
        context,
        "document",
        {
            "template": template.name,
            "entity": template.entity,
            "record_id": record_id,
            "filename": filename,
            "content_type": content_type,
            "content": content,
        },
    )
    notify(
        context,
        users=recipients,
        title=f"{template.title}：{filename}",
        kind="document",
        link_entity="document",
        link_id=document["id"],
    )
    return document


def intake_url(
    context: WriteContext, form_name: str, entity: str, record_id: str, base_url: str | None
) -> str:
    """The signed link that opens ``form_name`` for the record (absolute with ``base_url``)."""
    form = find_form(context.connection, context.catalog, form_name)
    if form is None:
        raise NotFound(f"no intake form {form_name!r}", field="form")
    field = context.catalog.entity(form.entity).field(form.prefill or "")
    if field is None or field.target != entity:
        raise BadUserInput(
            f"intake form {form_name} is not opened for a {entity} (its prefill is "
            f"{form.prefill or 'not set'})",
            field="form",
        )
    path = intake_path(form.secret, form.name, record_id)
    return (base_url or "").rstrip("/") + path


def _variables(
    context: WriteContext,
    catalog: Catalog,
    template: DocumentTemplateDecl,
    record: dict[str, Any],
    base_url: str | None,
) -> dict[str, Any]:
    entity = catalog.entity(template.entity)
    views = RecordViews(context)
    values = views.values(entity.name, record)
    labels = {f.name: f.label.text("zh-CN") for f in entity.fields}

    def qr(form: str) -> Markup:
        url = intake_url(context, form, entity.name, record["id"], base_url)
        if template.format == "pdf":  # PDF layout takes images, not inline SVG
            png = base64.b64encode(qr_png(url)).decode("ascii")
            return Markup(f'<img src="data:image/png;base64,{png}" width="120" height="120">')
        return Markup(qr_svg(url))  # segno's SVG of our own link: nothing a user typed

    def link(form: str) -> str:
        return intake_url(context, form, entity.name, record["id"], base_url)

    def related(path: str, of: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return views.related(path, values if of is None else of)

    def rows(field: str, order_by: str | None = None) -> list[dict[str, Any]]:
        return views.rows(field, values, order_by)

    def shown(field: str, of: dict[str, Any] | None = None) -> str:
        return views.shown(values if of is None else of, field)

    now: dt.datetime = context.now().astimezone(ZONE)
    return {
        "record": values,
        "related": related,
        "rows": rows,
        "shown": shown,
        "labels": labels,
        "title": template.title,
        "today": now.date().isoformat(),
        "now": now.strftime("%Y-%m-%d %H:%M"),
        "qr": qr,
        "intake_link": link,
    }
