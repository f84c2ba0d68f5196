"""Business calendars: working days, weekends, statutory holidays, make-up working days.

Calendars are records (``business_calendar`` and ``calendar_year``) that
manifests declare and administrators extend; :class:`BusinessCalendar` does the
arithmetic that formulas (``WORKDAY``), rule timers and plugins use
(docs/calendars.md).
"""

from qiao.core.calendars.calendar import BusinessCalendar, CalendarError

__all__ = ["BusinessCalendar", "CalendarError"]
