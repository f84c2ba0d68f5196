"""Masked reads: a field shown as ``138****5678`` or ``张*`` instead of its value.

A role's field rule ``masked`` lets its holders see that a value exists and
recognise it (the last digits of a phone, a family name) without reading it
(docs/privacy.md). Each field has a :class:`Mask`: the one its declaration
names (``mask: name``), else the default of its type (phones and e-mail
addresses). Masks are applied in two equal forms: :func:`sql_mask` inside the
compiled GraphQL read, so the database never sends the value (on SQLite, in
the same process, it calls :func:`apply_mask` itself), and
:func:`apply_mask` in Python, for encrypted fields (opened after the query),
the records service and the audit trail. Tests hold both forms to the same
output.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, case, cast, func, literal

from qiao.core.metadata.model import FieldDef, FieldType

#: Stored phones are E.164 (``+8613812345678``); a Chinese number is masked as dialled at home.
DOMESTIC_PREFIX = "+86"
#: The longest run of stars a mask writes: a long value does not show its length.
MAX_STARS = 16
_STARS = "*" * MAX_STARS


class Mask(StrEnum):
    """The masks a field can declare (``mask:`` in its manifest)."""

    #: +8613812345678 -> 138****5678 (a Chinese number without its country code)
    PHONE = "phone"
    #: 张三 -> 张*, 欧阳娜娜 -> 欧***
    NAME = "name"
    #: 110101199003071234 -> 110***********1234
    ID_NUMBER = "id_number"
    #: zhangsan@example.com -> z***@example.com
    EMAIL = "email"
    #: anything -> ****
    FULL = "full"


@dataclass(frozen=True)
class _Keep:
    """Keep ``head`` characters at the start and ``tail`` at the end, star the rest."""

    head: int
    tail: int


_KEEP = {
    Mask.PHONE: _Keep(3, 4),
    Mask.NAME: _Keep(1, 0),
    Mask.ID_NUMBER: _Keep(3, 4),
}
#: Masks by field type, when the field declares none.
DEFAULTS = {FieldType.PHONE: Mask.PHONE, FieldType.EMAIL: Mask.EMAIL}
#: The types a mask applies to: text whose characters can be starred.
MASKABLE_TYPES = frozenset(
    {FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL}
)


def mask_of(field: FieldDef) -> Mask | None:
    """The field's mask, or None when it cannot be masked (a masked grant then hides it)."""
    if field.type not in MASKABLE_TYPES or field.computed:
        return None
    if field.mask is not None:
        return Mask(field.mask)
    return DEFAULTS.get(field.type, Mask.FULL)


def apply_mask(mask: Mask, value: Any) -> Any:
    """``value`` as a masked reader sees it (None stays None)."""
    if value is None:
        return None
    text = str(value)
    if mask is Mask.FULL:
        return "****"
    if mask is Mask.PHONE:
        text = text.removeprefix(DOMESTIC_PREFIX)
    if mask is Mask.EMAIL:
        at = text.find("@")
        if at < 0:
            return _keep(text, _Keep(1, 0))
        return text[:1] + "***" + text[at:]
    return _keep(text, _KEEP[mask])


def _keep(text: str, keep: _Keep) -> str:
    n = len(text)
    if n == 0:
        return text
    if n <= keep.head + keep.tail:  # too short to keep both ends: only its first character
        return text[:1] + "*" * min(n - 1, MAX_STARS)
    stars = "*" * min(n - keep.head - keep.tail, MAX_STARS)
    return text[: keep.head] + stars + (text[n - keep.tail :] if keep.tail else "")


#: The SQL function :func:`apply_mask` is on SQLite (``qiao_mask('phone', mobile)``): the
#: runtime gives every SQLite connection :func:`sqlite_mask` under this name.
SQLITE_FUNCTION = "qiao_mask"


def sqlite_mask(mask: str, value: Any) -> Any:
    """:func:`apply_mask` as SQLite calls it, the mask by name."""
    return apply_mask(Mask(mask), value)


def sql_mask(mask: Mask, value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The SQL of :func:`apply_mask` (NULL stays NULL).

    PostgreSQL computes it with string functions. SQLite calls :func:`sqlite_mask`,
    which runs in the same process: the expression, repeated in a list nested in a
    relation nested in a list, went past SQLite's parser stack (``parser stack
    overflow``), which PostgreSQL's parser does not have.
    """
    if dialect == "sqlite":
        return getattr(func, SQLITE_FUNCTION)(literal(mask.value, String), value, type_=String)
    text = cast(value, String)
    if mask is Mask.FULL:
        return case((value.is_(None), None), else_=literal("****", String))
    if mask is Mask.EMAIL:
        at = func.strpos(text, "@")
        return case(
            (value.is_(None), None),
            (at == 0, _sql_keep(text, _Keep(1, 0))),
            else_=_substr(text, 1, 1) + literal("***", String) + _substr(text, at),
        )
    if mask is Mask.PHONE:
        prefix = len(DOMESTIC_PREFIX)
        domestic = _substr(text, 1, prefix) == DOMESTIC_PREFIX
        text = case((domestic, _substr(text, prefix + 1)), else_=text)
    return case((value.is_(None), None), else_=_sql_keep(text, _KEEP[mask]))


def _sql_keep(text: ColumnElement[Any], keep: _Keep) -> ColumnElement[Any]:
    n = func.length(text, type_=Integer)
    stars = literal(_STARS, String)
    # substr of MAX_STARS stars stops at their end: at most MAX_STARS, as in _keep
    short = _substr(text, 1, 1) + _substr(stars, 1, n - 1)
    long = _substr(text, 1, keep.head) + _substr(stars, 1, n - keep.head - keep.tail)
    if keep.tail:
        long = long + _substr(text, n - keep.tail + 1)
    return case((n == 0, text), (n <= keep.head + keep.tail, short), else_=long)


def _substr(text: Any, start: Any, length: Any = None) -> ColumnElement[str]:
    if length is None:
        return func.substr(text, start, type_=String)
    return func.substr(text, start, length, type_=String)
