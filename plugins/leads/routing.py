"""Assigning a new lead to a salesperson by ordered rules that sales operations maintain.

Rules are records (``lead_assignment_rule``), edited through the API like any
other data: tried by ascending ``position``, the first active rule whose
conditions match and whose strategy finds someone assigns the lead. A rule
outside its working hours, or whose team has nobody active, is passed over, so
a later rule (an on-duty desk, a manager) catches what the earlier ones leave.

Conditions (``conditions`` JSON; every key given must match, lists mean "any of"):

``industry``           substrings of the lead's industry or company ("液压", "汽配")
``province``/``city``  short names ("浙江", "宁波"), from the lead, its address or its phone
``region``             sales regions ("华东")
``source``             lead sources (``WEB_FORM``, ``TRADE_SHOW`` ...)
``purchase_frequency`` ``ONE_OFF``, ``OCCASIONAL``, ``REGULAR``
``intent_tags``        any of these tags ("高意向")
``min_intent``         the intent score is at least this

Strategies: ``USER`` (the rule's user), ``ROUND_ROBIN`` (the team member whose
last lead from this rule is oldest; no counter to contend on), ``FEWEST_OPEN``
(the team member with the fewest leads not yet converted or disqualified).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, func, select

from qiao.core.catalog import Catalog

OPEN_STATUSES = ("NEW", "CONTACTED", "QUALIFIED")
DEFAULT_FIRST_TOUCH_MINUTES = 30
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Assignment:
    owner_id: str
    rule_id: str
    first_touch_minutes: int


def assign(
    conn: Connection, catalog: Catalog, lead: Mapping[str, Any], now: dt.datetime
) -> Assignment | None:
    """The first matching rule's choice of owner for ``lead`` (values by field name)."""
    rules = catalog.table("lead_assignment_rule")
    stmt = (
        select(rules)
        .where(rules.c.is_active.is_(True))
        .order_by(rules.c.position, rules.c.created_at, rules.c.id)
    )
    for rule in conn.execute(stmt).mappings():
        if not matches(rule["conditions"] or {}, lead):
            continue
        if not within_hours(rule["working_hours"], now):
            continue
        owner = _choose(conn, catalog, rule)
        if owner is not None:
            minutes = rule["first_touch_minutes"] or DEFAULT_FIRST_TOUCH_MINUTES
            return Assignment(owner, rule["id"], minutes)
    return None


def matches(conditions: Mapping[str, Any], lead: Mapping[str, Any]) -> bool:
    """Whether every condition holds for the lead."""
    for key, wanted in conditions.items():
        options = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
        match key:
            case "industry":
                text = f"{lead.get('industry') or ''} {lead.get('company') or ''}"
                if not any(o in text for o in options):
                    return False
            case "intent_tags":
                if not set(options) & set(lead.get("intent_tags") or ()):
                    return False
            case "min_intent":
                if (lead.get("intent_score") or 0) < int(wanted):
                    return False
            case _:
                if str(lead.get(key)) not in options:
                    return False
    return True


def within_hours(hours: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    """``{"days": [1..7], "start": "09:00", "end": "18:00", "timezone": "Asia/Shanghai"}``.

    Days are ISO weekdays (1 is Monday); a missing key means "any". A window
    whose end is before its start runs over midnight (a night desk).
    """
    if not hours:
        return True
    try:
        zone = ZoneInfo(str(hours.get("timezone") or DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    local = now.astimezone(zone)
    days = hours.get("days")
    if days and local.isoweekday() not in days:
        return False
    start = dt.time.fromisoformat(str(hours.get("start") or "00:00"))
    end = dt.time.fromisoformat(str(hours.get("end") or "23:59:59"))
    at = local.time()
    return start <= at < end if start <= end else at >= start or at < end


def _choose(conn: Connection, catalog: Catalog, rule: Mapping[str, Any]) -> str | None:
    users = catalog.table("user")
    if rule["strategy"] == "USER":
        found = conn.execute(
            select(users.c.id).where(users.c.id == rule["user_id"], users.c.is_active.is_(True))
        ).first()
        return found.id if found else None
    members = [
        r.id
        for r in conn.execute(
            select(users.c.id)
            .where(users.c.team_id == rule["team_id"], users.c.is_active.is_(True))
            .order_by(users.c.username)
        )
    ]
    if not members:
        return None
    leads = catalog.table("lead")
    if rule["strategy"] == "ROUND_ROBIN":
        last = dict(
            conn.execute(
                select(leads.c.owner_id, func.max(leads.c.assigned_at))
                .where(leads.c.assignment_rule_id == rule["id"], leads.c.owner_id.in_(members))
                .group_by(leads.c.owner_id)
            ).all()
        )
        return _least(members, {m: last.get(m) for m in members})
    counts = dict(
        conn.execute(
            select(leads.c.owner_id, func.count())
            .where(leads.c.owner_id.in_(members), leads.c.status.in_(OPEN_STATUSES))
            .group_by(leads.c.owner_id)
        ).all()
    )
    return _least(members, {m: counts.get(m, 0) for m in members})


def _least(members: Sequence[str], score: Mapping[str, Any]) -> str:
    """The member with the lowest score (never-assigned first), ties in member order."""
    return min(members, key=lambda m: (score[m] is not None, score[m] or 0, members.index(m)))
