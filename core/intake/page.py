"""The HTML of an intake form: one page, no script, each error beside its field.

Served to people who are not signed in, often on a phone after scanning a QR
code, so it is small, in Chinese first, and works without JavaScript; the
values a refused submission carried are shown again so nothing is typed twice.
"""

from __future__ import annotations

from html import escape
from typing import Any

from qiao.core.intake.forms import IntakeForm
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType

#: The hidden field people leave empty and form-filling robots do not.
HONEYPOT = "website_url"
_INPUT_TYPES = {
    FieldType.EMAIL: "email",
    FieldType.PHONE: "tel",
    FieldType.URL: "url",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "text",
}
_STYLE = (
    "body{font-family:system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;max-width:36rem;"
    "margin:2rem auto;padding:0 1rem}label{display:block;margin-top:1rem;font-weight:600}"
    "input,textarea,select{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    ".error{color:#b00020;margin:.25rem 0}.summary{border:1px solid #b00020;padding:.5rem}"
    "button{margin-top:1.5rem;padding:.6rem 1.5rem;font-size:1rem}.hp{display:none}"
)


def form_page(
    form: IntakeForm,
    entity: EntityDef,
    *,
    action: str,
    prefilled: str | None = None,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
) -> str:
    """The form, with ``error`` beside ``error_field`` (or above all) after a refusal."""
    values = values or {}
    parts = [f"<h1>{escape(form.title)}</h1>"]
    if form.description:
        parts.append(f"<p>{escape(form.description)}</p>")
    if prefilled:
        label = entity.field(form.prefill or "")
        shown = label.label.text("zh-CN") if label is not None else ""
        parts.append(f"<p>{escape(shown)}：<strong>{escape(prefilled)}</strong></p>")
    if error and error_field not in form.fields:
        parts.append(f'<p class="error summary" role="alert">{escape(error)}</p>')
    parts.append(f'<form method="post" action="{escape(action)}">')
    for name in form.fields:
        field = entity.field(name)
        if field is None:
            continue
        message = error if error_field == name else None
        parts.append(_input(field, values.get(name), message))
    parts.append(
        f'<div class="hp"><label for="{HONEYPOT}">Website</label>'
        f'<input id="{HONEYPOT}" name="{HONEYPOT}" tabindex="-1" autocomplete="off"></div>'
        '<button type="submit">提交</button></form>'
    )
    return _document(form.title, "".join(parts))


def thanks_page(form: IntakeForm) -> str:
    return _document(form.title, f"<h1>{escape(form.title)}</h1><p>已收到，谢谢！</p>")


def message_page(title: str, message: str) -> str:
    return _document(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")


def _input(field: FieldDef, value: Any, error: str | None) -> str:
    name = escape(field.name)
    label = escape(field.label.text("zh-CN")) + (" *" if field.required else "")
    required = " required" if field.required else ""
    invalid = f' aria-invalid="true" aria-describedby="{name}-error"' if error else ""
    text = "" if value is None else escape(str(value))
    if field.type is FieldType.TEXT:
        control = (
            f'<textarea id="{name}" name="{name}" rows="4"{required}{invalid}>{text}</textarea>'
        )
    elif field.type is FieldType.ENUM:
        options = "".join(
            f'<option value="{escape(v.value)}"{" selected" if v.value == value else ""}>'
            f"{escape(v.label.text('zh-CN'))}</option>"
            for v in field.values
        )
        control = (
            f'<select id="{name}" name="{name}"{required}{invalid}>'
            f'<option value=""></option>{options}</select>'
        )
    else:
        kind = _INPUT_TYPES.get(field.type, "text")
        control = (
            f'<input id="{name}" name="{name}" type="{kind}" value="{text}"{required}{invalid}>'
        )
    shown = f'<p class="error" id="{name}-error" role="alert">{escape(error)}</p>' if error else ""
    return f'<label for="{name}">{label}</label>{control}{shown}'


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
