"""One redaction path for every copy of record data.

An encrypted field's plaintext exists only in memory, between the records
service opening it and the caller using it. Every value opened by
:class:`~qiao.core.encryption.FieldEncryption` is a :class:`Sensitive` string,
so anything that copies record data (the audit log, the outbox and with it
automation and webhooks, merge history, import reports, logs, error messages)
can tell it apart from plain data and replace it with :data:`REDACTED`, here,
in one place, instead of each path remembering which fields are encrypted:

* :func:`scrub` replaces sensitive values in any JSON-like value;
* :func:`redacted_snapshot` is the copy of a record to keep in another record
  or to hand outside (encrypted fields and fields the reader may not read left
  as :data:`REDACTED`);
* :func:`changes_entry` is a field's change as the audit log and events keep it, and
  :func:`redacted_changes` a whole write's, made once for both;
* :class:`LogScrubber` takes sensitive values and secrets out of log records;
* the records service refuses a sensitive value in a field that is not
  encrypted (:func:`contains_sensitive`), so a decrypted value cannot be
  written back in clear by copying it into a plain field or a JSON document.

A tag survives being passed around, not being transformed: ``value.lower()``
or an f-string is a new plain string. That is why copies are made from
records (whose values are tagged), and why free text (log messages, errors)
is also scrubbed for secret patterns. docs/encryption.md describes the whole.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from qiao.core.masking import apply_mask, mask_of
from qiao.core.metadata.model import EntityDef, FieldDef
from qiao.core.metadata.values import to_json
from qiao.core.permissions.rights import FieldAccess

if TYPE_CHECKING:
    from qiao.core.permissions.access import Access

#: What a copy holds in place of a sensitive value.
REDACTED = "[redacted]"


class Sensitive(str):
    """The plaintext of an encrypted field, as opened by the records service.

    A plain ``str`` in every respect (compares, hashes, serialises as its
    text), except that its ``repr`` is :data:`REDACTED`, so tracebacks, ``%r``
    and ``!r`` formatting do not show it.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(REDACTED)


#: Types of values that neither are nor hold a sensitive value and cannot change in place
#: (exact types: a ``str`` subclass may be :class:`Sensitive`); copies and checks meet them
#: most, and answer them without the slower walk.
PLAIN_TYPES: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), decimal.Decimal, dt.date, dt.datetime, dt.time}
)


def sensitive(value: str) -> Sensitive:
    """``value`` tagged as an encrypted field's plaintext."""
    return value if isinstance(value, Sensitive) else Sensitive(value)


def contains_sensitive(value: Any) -> bool:
    """Whether ``value`` is, or (in a mapping, list, tuple or set) holds, a sensitive value."""
    if type(value) in PLAIN_TYPES:
        return False
    if isinstance(value, Sensitive):
        return True
    if isinstance(value, Mapping):
        return any(contains_sensitive(k) or contains_sensitive(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_sensitive(v) for v in value)
    return False


def scrub(value: Any) -> Any:
    """``value`` with every sensitive value, at any depth, replaced by :data:`REDACTED`.

    Mappings become dicts and tuples lists (the JSON shapes); other values are
    returned as they are.
    """
    if type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, Sensitive):
        return REDACTED
    if isinstance(value, Mapping):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def redacted_change() -> dict[str, bool]:
    """What the audit log and events keep of a hidden field's change: that it changed."""
    return {"redacted": True}


def is_redacted_change(change: Any) -> bool:
    return change == redacted_change()


def is_hidden(field: FieldDef) -> bool:
    """Whether copies of records leave the field's values out: it is stored encrypted."""
    return bool(getattr(field, "encrypted", False))


def changes_entry(
    field: FieldDef | None,
    old: Any,
    new: Any,
    *,
    hidden: bool | None = None,
    form: Callable[[FieldDef, Any], Any] | None = None,
) -> Any:
    """One field's change as a copy keeps it: ``(old, new)`` or :func:`redacted_change`.

    ``hidden`` overrides :func:`is_hidden` (the audit log lets a deployment
    redact more); ``form`` converts each value (the outbox's JSON form). The
    values are :func:`scrub`-bed either way, so a sensitive value held in a
    plain JSON field (which the records service refuses) could not pass.
    """
    if hidden is None:
        hidden = field is not None and is_hidden(field)
    if hidden:
        return redacted_change()
    if form is not None and field is not None:
        old, new = form(field, old), form(field, new)
    return scrub(old), scrub(new)


def redacted_changes(entity: EntityDef, changes: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    """A write's changes as every copy keeps them: field name -> :func:`changes_entry`.

    The audit log and the outbox both copy each write, so both come here, and
    a write's changes are redacted once between them: the result is remembered
    (per thread, for the last few thousand writes) against the changes mapping
    the records service handed to both, and given again while that mapping is
    unchanged. Each copy then puts the entries in its own form and may hide
    more fields (the audit log's ``redact``, an erasure), never fewer.
    """
    memo: dict[int, tuple[Mapping[str, Any], dict[str, Any], dict[str, Any]]] | None
    memo = getattr(_recent, "memo", None)
    if memo is None:
        memo = _recent.memo = {}
    held = memo.get(id(changes))
    if held is not None and held[0] is changes and held[1] == changes:
        return held[2]
    redacted = {
        name: changes_entry(entity.field(name), old, new) for name, (old, new) in changes.items()
    }
    if len(memo) >= _REMEMBERED:
        memo.clear()
    # Holding the mapping keeps its id from being reused while it is remembered.
    memo[id(changes)] = (changes, dict(changes), redacted)
    return redacted


#: Writes whose redacted changes each thread remembers (:func:`redacted_changes`).
_REMEMBERED = 2048
_recent = threading.local()


def redacted_snapshot(
    record: Mapping[str, Any], entity: EntityDef, access: Access | None = None
) -> dict[str, Any]:
    """A copy of ``record`` to keep elsewhere: field name -> JSON value, nulls left out.

    Encrypted fields, and with ``access`` the fields it may not read, are
    :data:`REDACTED` (the copy says the field had a value, not which), and the
    fields it reads masked are masked; the copy holds no sensitive value, so it
    may be stored in a plain field.
    """
    snapshot: dict[str, Any] = {}
    for field in entity.fields:
        value = record.get(field.column, record.get(field.name))
        if value is None:
            continue
        hidden = is_hidden(field) or (
            access is not None
            and not access.is_unrestricted
            and access.field_access(entity.name, field.name) is FieldAccess.NONE
        )
        reads_masked = (
            access is not None
            and not access.is_unrestricted
            and access.field_access(entity.name, field.name) is FieldAccess.MASKED
        )
        mask = mask_of(field) if reads_masked else None
        if hidden:
            snapshot[field.name] = REDACTED
        elif mask is not None:  # shown to this reader masked (docs/privacy.md)
            snapshot[field.name] = apply_mask(mask, value)
        else:
            snapshot[field.name] = scrub(to_json(field, value))
    return snapshot


# -- Logs -------------------------------------------------------------------------------------

#: Secrets that free text may hold, and what replaces their secret part.
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Credentials in URLs: postgresql://user:password@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.I), REDACTED),
    # Bearer and basic credentials in headers
    (re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), REDACTED),
    # Qiao API tokens (qiao.core.auth.tokens)
    (re.compile(r"(?P<keep>)\bqiao_[A-Za-z0-9_-]{20,}"), REDACTED),
    # password=..., token=..., api_key=... and their JSON form "secret": "..."
    (
        re.compile(
            r"(?P<keep>\b(?:password|passwd|secret|token|api[_-]?key|kek)"
            r"(?:=|[\"']\s*:\s*[\"']))[^\s\"',;&}]+",
            re.I,
        ),
        REDACTED,
    ),
)


def scrub_text(text: str) -> str:
    """``text`` with the secret part of every :data:`SECRET_PATTERNS` match replaced."""
    for pattern, marker in SECRET_PATTERNS:
        text = pattern.sub(lambda m, marker=marker: m.group("keep") + marker, text)
    return text


class LogScrubber(logging.Filter):
    """Takes sensitive values and secrets out of log records; never drops a record.

    Sensitive arguments are replaced before the message is formatted; the
    formatted message and any traceback are then scrubbed of secret patterns.
    :func:`install_log_scrubber` applies it to every record the process makes,
    whichever handler later writes it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.msg) if isinstance(record.msg, Sensitive) else record.msg
        if isinstance(record.args, Mapping):
            record.args = scrub(record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(scrub(a) for a in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: logging reports it later
            return True
        cleaned = scrub_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        return True


_install_lock = threading.Lock()


def install_log_scrubber() -> None:
    """Scrub every log record this process makes (idempotent).

    Installed as a wrapper of the log record factory rather than on handlers,
    so records reach every handler scrubbed, including handlers that servers
    and tests add later.
    """
    with _install_lock:
        factory = logging.getLogRecordFactory()
        if getattr(factory, "scrubbed", False):
            return
        scrubber = LogScrubber()

        def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            scrubber.filter(record)
            return record

        scrubbed_record.scrubbed = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(scrubbed_record)
