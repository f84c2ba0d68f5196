"""Calendars read from their records, kept per runtime and re-read when they change.

Formulas, rule timers and plugins ask for a calendar by name many times per
request, so the calendars are read once into :class:`Calendars` and kept. A
write to ``business_calendar`` or ``calendar_year`` in this process drops them
at once; other processes re-read them after :data:`REFRESH_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from qiao.core.calendars.calendar import BusinessCalendar
from qiao.core.calendars.declaration import CalendarDecl, CalendarYearDecl
from qiao.core.errors import NotFound
from qiao.core.records.context import Actor

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from qiao.core.records.host import RecordsHost
    from qiao.core.runtime import Runtime

_STATE = "calendars:store"
#: Seconds another process's change to a calendar may take to be seen here.
REFRESH_SECONDS = 30.0


class Calendars:
    """The calendars of one runtime, by name."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._loaded: dict[str, BusinessCalendar] | None = None
        self._at = 0.0

    def get(self, name: str, connection: Connection | None = None) -> BusinessCalendar:
        """The calendar ``name``; NotFound names the calendars there are.

        ``connection`` reads through the caller's transaction, which sees
        calendars it wrote itself (a template install declaring ``cn`` and
        seeding records that need it, in one transaction).
        """
        known = self.all(connection)
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise NotFound(f"no business calendar {name!r} (there are: {have})", field="calendar")
        return known[name]

    def all(self, connection: Connection | None = None) -> dict[str, BusinessCalendar]:
        with self._lock:
            fresh = time.monotonic() - self._at < REFRESH_SECONDS
            if self._loaded is not None and fresh:
                return self._loaded
        if connection is not None:
            loaded = read(connection, self.runtime)
        else:
            with self.runtime.db.read() as conn:
                loaded = read(conn, self.runtime)
        with self._lock:
            self._loaded, self._at = loaded, time.monotonic()
        return loaded

    def forget(self) -> None:
        """Drop what was read (a calendar changed in this process)."""
        with self._lock:
            self._loaded = None


def calendars(runtime: RecordsHost) -> Calendars:
    """The runtime's :class:`Calendars`."""
    return runtime.state(_STATE, Calendars)


def read(conn: Connection, runtime: Runtime) -> dict[str, BusinessCalendar]:
    """Every calendar as its records say, a calendar's base applied first."""
    rows = _all(conn, runtime, "business_calendar")
    years: dict[str, list[dict[str, Any]]] = {}
    for row in _all(conn, runtime, "calendar_year"):
        years.setdefault(row["calendar"], []).append(row)
    by_name = {row["name"]: row for row in rows}
    built: dict[str, BusinessCalendar] = {}

    def build(name: str, chain: tuple[str, ...]) -> BusinessCalendar:
        if name in built:
            return built[name]
        row = by_name[name]
        holidays: dict[dt.date, str] = {}
        workdays: dict[dt.date, str] = {}
        declared: set[int] = set()
        base = row.get("base")
        if base in by_name and base not in chain:
            parent = build(base, (*chain, name))
            holidays.update(parent.holidays)
            workdays.update(parent.workdays)
            declared |= parent.years
        for year_row in sorted(years.get(name, []), key=lambda r: r["year"]):
            year = year_row_decl(year_row)
            declared.add(year.year)
            for holiday in year.holidays:
                for day in holiday.days():
                    holidays[day] = holiday.name
                    workdays.pop(day, None)
            for workday in year.workdays:
                workdays[workday.date] = workday.name or "调休"
                holidays.pop(workday.date, None)
        decl = calendar_decl(row)
        calendar = BusinessCalendar(
            name=name,
            timezone=ZoneInfo(decl.timezone),
            weekend=frozenset(decl.weekend),
            hours=tuple(
                (dt.time.fromisoformat(a), dt.time.fromisoformat(b)) for a, b in decl.working_hours
            ),
            holidays=holidays,
            workdays=workdays,
            years=frozenset(declared),
        )
        built[name] = calendar
        return calendar

    for name in by_name:
        build(name, ())
    return built


def calendar_decl(row: dict[str, Any]) -> CalendarDecl:
    """A ``business_calendar`` record as a declaration (checks it)."""
    keys = ("name", "title", "timezone", "weekend", "working_hours", "base")
    return CalendarDecl.model_validate({k: row[k] for k in keys if row.get(k) is not None})


def year_row_decl(row: dict[str, Any]) -> CalendarYearDecl:
    """A ``calendar_year`` record as a declaration (checks it)."""
    keys = ("year", "notice", "holidays", "workdays")
    return CalendarYearDecl.model_validate({k: row[k] for k in keys if row.get(k) is not None})


def _all(conn: Connection, runtime: Runtime, entity: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = runtime.records.list(conn, entity, first=500, after=after, actor=Actor.system())
        found += page.records
        if not page.has_next_page:
            return found
        after = page.cursors[-1]
