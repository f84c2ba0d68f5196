"""An appointment booked without an end lasts :data:`DEFAULT_LENGTH`.

Front desks book a time; the length is the department's usual slot. Appointments
made by version 0.1 of the template kept a duration in a column this version no
longer declares, so the end is not required of stored records, only filled in
for new ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DEFAULT_LENGTH = dt.timedelta(minutes=30)


def fill_end(values: dict[str, Any]) -> None:
    """Give a new appointment without ``ends_at`` the default length."""
    if values.get("ends_at") is None and isinstance(values.get("starts_at"), dt.datetime):
        values["ends_at"] = values["starts_at"] + DEFAULT_LENGTH
