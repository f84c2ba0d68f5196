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
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, func, select

from qiao.api import Catalog

OPEN_STATUSES = ("NEW", "CONTACTED", "QUALIFIED")
DEFAULT_FIRST_TOUCH_MINUTES = 30
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Assignment:
    owner_id: str
    rule_id: str
    first_touch_minutes: int


def assign(
    conn: Connection,
    catalog: Catalog,
    lead: Mapping[str, Any],
    now: dt.datetime,
    exclude: Collection[str] = (),
) -> Assignment | None:
    """The first matching rule's choice of owner for ``lead`` (values by field name).

    Users in ``exclude`` are passed over (the owner who missed a first touch).
    Inside :func:`batch` (an import's transaction) the rules and the state of
    their strategies are read once for all the batch's leads.
    """
    router = _routers.get(id(conn))
    if router is None or router.conn is not conn:
        router = Router(conn, catalog)
    return router.assign(lead, now, exclude)


class Router:
    """The active rules and what their strategies need, read as needed, kept in memory.

    For one lead it reads what :func:`assign` always read (the rules, then the
    matching rule's members and their last assignment or open leads). Kept for
    a batch, it reads each of those once and counts the batch's own
    assignments in (:meth:`stored`), so a 500-row import batch routes with a
    handful of queries instead of three per row, with the same outcome.
    """

    def __init__(self, conn: Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog
        self.rules = active_rules(conn, catalog)
        self._members: dict[str, list[str]] = {}  # team id -> active members, by username
        self._active: dict[str, bool] = {}  # user id -> active
        self._last: dict[str, dict[str, Any]] = {}  # rule id -> member -> last assigned_at
        self._open: dict[str, int] = {}  # user id -> open leads

    def assign(
        self, lead: Mapping[str, Any], now: dt.datetime, exclude: Collection[str] = ()
    ) -> Assignment | None:
        for rule in self.rules:
            if not matches(rule["conditions"] or {}, lead):
                continue
            if not within_hours(rule["working_hours"], now):
                continue
            owner = self._choose(rule, exclude)
            if owner is not None:
                minutes = rule["first_touch_minutes"] or DEFAULT_FIRST_TOUCH_MINUTES
                return Assignment(owner, rule["id"], minutes)
        return None

    def decided(self, values: Mapping[str, Any]) -> None:
        """Count a lead about to be written (values by field name) into the kept state.

        A batch written at once decides every lead's owner before storing any,
        so each decision is counted in before the next lead is routed.
        """
        self.stored(
            {
                "owner_id": values.get("owner"),
                "assignment_rule_id": values.get("assignment_rule"),
                "assigned_at": values.get("assigned_at"),
                "status": values.get("status"),
            }
        )

    def stored(self, lead: Mapping[str, Any]) -> None:
        """Count a lead just written (a stored row, by column) into the kept state."""
        owner = lead.get("owner_id")
        if owner is None:
            return
        rule_id = lead.get("assignment_rule_id")
        last = self._last.get(rule_id) if rule_id is not None else None
        if last is not None and lead.get("assigned_at") is not None:
            known = last.get(owner)
            if known is None or known < lead["assigned_at"]:
                last[owner] = lead["assigned_at"]
        if owner in self._open and lead.get("status") in OPEN_STATUSES:
            self._open[owner] += 1

    def _choose(self, rule: Mapping[str, Any], exclude: Collection[str]) -> str | None:
        if rule["strategy"] == "USER":
            user = rule["user_id"]
            if user is None or user in exclude:
                return None
            return user if self._is_active(user) else None
        members = [m for m in self._team(rule["team_id"]) if m not in exclude]
        if not members:
            return None
        if rule["strategy"] == "ROUND_ROBIN":
            last = self._last_assigned(rule["id"], members)
            return _least(members, {m: last.get(m) for m in members})
        counts = self._open_leads(members)
        return _least(members, {m: counts[m] for m in members})

    def _is_active(self, user_id: str) -> bool:
        if user_id not in self._active:
            users = self.catalog.table("user")
            found = self.conn.execute(
                select(users.c.id).where(users.c.id == user_id, users.c.is_active.is_(True))
            ).first()
            self._active[user_id] = found is not None
        return self._active[user_id]

    def _team(self, team_id: str | None) -> list[str]:
        if team_id is None:
            return []
        if team_id not in self._members:
            users = self.catalog.table("user")
            self._members[team_id] = [
                r.id
                for r in self.conn.execute(
                    select(users.c.id)
                    .where(users.c.team_id == team_id, users.c.is_active.is_(True))
                    .order_by(users.c.username)
                )
            ]
        return self._members[team_id]

    def _last_assigned(self, rule_id: str, members: Sequence[str]) -> dict[str, Any]:
        last = self._last.setdefault(rule_id, {})
        missing = [m for m in members if m not in last]
        if missing:
            leads = self.catalog.table("lead")
            found = dict(
                self.conn.execute(
                    select(leads.c.owner_id, func.max(leads.c.assigned_at))
                    .where(leads.c.assignment_rule_id == rule_id, leads.c.owner_id.in_(missing))
                    .group_by(leads.c.owner_id)
                ).all()
            )
            last.update({m: found.get(m) for m in missing})
        return last

    def _open_leads(self, members: Sequence[str]) -> dict[str, int]:
        missing = [m for m in members if m not in self._open]
        if missing:
            leads = self.catalog.table("lead")
            found: dict[str, int] = dict(
                self.conn.execute(
                    select(leads.c.owner_id, func.count())
                    .where(leads.c.owner_id.in_(missing), leads.c.status.in_(OPEN_STATUSES))
                    .group_by(leads.c.owner_id)
                ).all()
            )
            self._open.update({m: int(found.get(m, 0)) for m in missing})
        return self._open


_routers: dict[int, Router] = {}


@contextmanager
def batch(conn: Connection, catalog: Catalog) -> Iterator[Router]:
    """Route every lead written on ``conn`` meanwhile with one :class:`Router`.

    For an importer's batch: one transaction, many leads. Assignment rules or
    users changed by another transaction meanwhile are seen from the next batch.
    Inside a batch on the same connection, the batch's router is the one used.
    """
    held = _routers.get(id(conn))
    if held is not None and held.conn is conn:
        yield held
        return
    router = Router(conn, catalog)
    _routers[id(conn)] = router
    try:
        yield router
    finally:
        _routers.pop(id(conn), None)


def stored(conn: Connection, lead: Mapping[str, Any]) -> None:
    """Tell the batch's router (if any) about a lead just written on ``conn``."""
    router = _routers.get(id(conn))
    if router is not None and router.conn is conn:
        router.stored(lead)


def active_rules(conn: Connection, catalog: Catalog) -> list[dict[str, Any]]:
    """The active assignment rules, in the order they are tried."""
    rules = catalog.table("lead_assignment_rule")
    stmt = (
        select(rules)
        .where(rules.c.is_active.is_(True))
        .order_by(rules.c.position, rules.c.created_at, rules.c.id)
    )
    return [dict(rule) for rule in conn.execute(stmt).mappings()]


def reassign(
    conn: Connection,
    catalog: Catalog,
    lead: Mapping[str, Any],
    now: dt.datetime,
    current_owner: str,
    rule_id: str | None,
) -> Assignment | None:
    """Someone other than ``current_owner`` for a lead whose first touch was missed.

    The rules are tried again without the current owner; when none finds
    anyone, the ``fallback_user`` of the rule that assigned the lead (a team
    lead, an on-duty desk) takes it, if active and not the current owner.
    """
    chosen = assign(conn, catalog, lead, now, exclude={current_owner})
    if chosen is not None or rule_id is None:
        return chosen
    rules = catalog.table("lead_assignment_rule")
    rule = conn.execute(select(rules).where(rules.c.id == rule_id)).mappings().first()
    if rule is None or rule["fallback_user_id"] in (None, current_owner):
        return None
    users = catalog.table("user")
    active = conn.execute(
        select(users.c.id).where(
            users.c.id == rule["fallback_user_id"], users.c.is_active.is_(True)
        )
    ).first()
    if active is None:
        return None
    minutes = rule["first_touch_minutes"] or DEFAULT_FIRST_TOUCH_MINUTES
    return Assignment(active.id, rule["id"], minutes)


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


def _least(members: Sequence[str], score: Mapping[str, Any]) -> str:
    """The member with the lowest score (never-assigned first), ties in member order."""
    return min(members, key=lambda m: (score[m] is not None, score[m] or 0, members.index(m)))
