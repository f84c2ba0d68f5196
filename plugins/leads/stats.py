"""First response and conversion figures, per lead source or per owner.

For each group: how many leads, how many were touched at all, how many within
30 minutes of arriving (``first_touch_at - created_at``), and how many became
opportunities (an opportunity whose ``lead`` is the lead). Counted in SQL, in
one statement, on both databases; the shares are computed from the counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, select

from qiao.api import Access, Catalog

TOUCH_WITHIN = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Figures:
    key: str | None
    leads: int
    touched: int
    touched_in_time: int
    converted: int

    @property
    def touched_in_time_share(self) -> float:
        return self.touched_in_time / self.leads if self.leads else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.leads if self.leads else 0.0


def lead_figures(
    conn: Connection,
    catalog: Catalog,
    group_by: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    access: Access | None = None,
) -> list[Figures]:
    """Figures per ``source`` or ``owner_id`` for leads created in ``[since, until)``.

    With ``access``, over the leads that caller may read (the same rule as lists).
    """
    leads = catalog.table("lead")
    opportunities = catalog.table("opportunity")
    key = leads.c[group_by]
    in_time = _within(conn, leads.c.first_touch_at, leads.c.created_at)
    converted = exists().where(opportunities.c.lead_id == leads.c.id)
    stmt = select(
        key,
        func.count(),
        func.count(leads.c.first_touch_at),
        func.sum(case((in_time, 1), else_=0)),
        func.sum(case((converted, 1), else_=0)),
    ).group_by(key)
    if access is not None:
        access.require("lead", "read")
        readable = access.row_filter("lead", leads, "read")
        if readable is not None:
            stmt = stmt.where(readable)
    if since is not None:
        stmt = stmt.where(leads.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(leads.c.created_at < until)
    return [
        Figures(row[0], row[1], row[2], int(row[3] or 0), int(row[4] or 0))
        for row in conn.execute(stmt.order_by(key))
    ]


def _within(
    conn: Connection, touched: ColumnElement[Any], created: ColumnElement[Any]
) -> ColumnElement[bool]:
    """``touched - created <= 30 minutes``, spelled for each database (SQLite stores ISO text)."""
    if conn.dialect.name == "postgresql":
        return and_(touched.is_not(None), touched - created <= TOUCH_WITHIN)
    seconds = TOUCH_WITHIN.total_seconds()
    return and_(
        touched.is_not(None),
        (func.julianday(touched) - func.julianday(created)) * 86400 <= seconds,
    )
