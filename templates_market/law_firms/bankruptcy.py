"""The dates of a bankruptcy matter, checked against the windows of the 企业破产法.

- art. 14: known creditors are notified within 25 days of the acceptance ruling;
- art. 45: the claim-filing period runs at least 30 days and at most 3 months from the
  announcement of acceptance;
- art. 62: the first creditors' meeting is held within 15 days after the claim period ends;
- art. 63: creditors are told of a meeting at least 15 days before it.

A date outside its window is refused naming the article and the allowed range; a window whose
anchor date is not yet known is not checked.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qiao.api import BadUserInput

DAY = dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it has no such day."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


@dataclass(frozen=True)
class Window:
    """``field`` must fall in ``bounds(anchor)`` once ``anchor`` is known."""

    field: str
    anchor: str
    bounds: Callable[[dt.date], tuple[dt.date, dt.date]]
    rule: str


WINDOWS = (
    Window(
        "creditors_notified_on",
        "accepted_on",
        lambda d: (d, d + 25 * DAY),
        "企业破产法第14条：应自裁定受理破产申请之日起二十五日内通知已知债权人",
    ),
    Window(
        "claims_deadline",
        "announced_on",
        lambda d: (d + 30 * DAY, add_months(d, 3)),
        "企业破产法第45条：债权申报期限自发布受理破产申请公告之日起计算，最短不得少于三十日，最长不得超过三个月",
    ),
    Window(
        "first_meeting_on",
        "claims_deadline",
        lambda d: (d + DAY, d + 15 * DAY),
        "企业破产法第62条：第一次债权人会议自债权申报期限届满之日起十五日内召开",
    ),
    Window(
        "meeting_notice_on",
        "first_meeting_on",
        lambda d: (dt.date.min, d - 15 * DAY),
        "企业破产法第63条：召开债权人会议，应当于会议召开十五日前通知已知的债权人",
    ),
)
FIELDS = frozenset({w.field for w in WINDOWS} | {w.anchor for w in WINDOWS})


def check(values: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """Refuse a bankruptcy date outside its window; only the windows the write touches."""
    if not FIELDS & values.keys():
        return
    merged = {**(existing or {}), **values}
    for window in WINDOWS:
        if window.field not in values and window.anchor not in values:
            continue
        day, anchor = merged.get(window.field), merged.get(window.anchor)
        if day is None or anchor is None:
            continue
        low, high = window.bounds(anchor)
        if not low <= day <= high:
            allowed = f"不晚于 {high}" if low == dt.date.min else f"{low} 至 {high}"
            raise BadUserInput(
                f"{window.rule}；允许的日期为 {allowed}，而非 {day}", field=window.field
            )
