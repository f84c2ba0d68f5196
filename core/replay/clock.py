"""A clock running at an offset from real time, the offset shared through the database.

The offset lives in ``qiao_clock`` (one row). Each process re-reads it at most
every :data:`REFRESH_SECONDS`, and at once after it changed it itself, so a
change made through the API reaches the workers of other processes within
that time. Every change is written to the audit log in its transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from qiao.core.audit import log as audit_log
from qiao.core.errors import BadUserInput
from qiao.core.events import wake
from qiao.core.records.context import Actor, Source
from qiao.core.storage.database import Database
from qiao.core.storage.system import clock_offset

#: Seconds a process may keep using an offset another process has changed since.
REFRESH_SECONDS = 1.0
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> dt.timedelta:
    """``"1d"``, ``"2h30m"``, ``"1w"``: a forward step of the clock; BadUserInput otherwise."""
    cleaned = text.strip().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise BadUserInput(
            f"{text!r} is not a duration; write it like 1d, 2h30m, 90m or 1w", field="by"
        )
    step = dt.timedelta()
    for number, unit in parts:
        step += dt.timedelta(**{_UNITS[unit]: int(number)})
    return step


class ReplayClock:
    """``base()`` plus the deployment's stored offset; set and advanced by administrators."""

    def __init__(self, base: Callable[[], dt.datetime], db: Database) -> None:
        self.base = base
        self.db = db
        self._lock = threading.Lock()
        self._offset = dt.timedelta()
        self._read_at = -REFRESH_SECONDS

    def __call__(self) -> dt.datetime:
        return self.base() + self.offset()

    def offset(self) -> dt.timedelta:
        """The stored offset (re-read when the one in hand is older than REFRESH_SECONDS)."""
        with self._lock:
            if time.monotonic() - self._read_at < REFRESH_SECONDS:
                return self._offset
        try:
            micros = self.db.run_read(
                lambda conn: conn.execute(select(clock_offset.c.offset_us)).scalar()
            )
        except SQLAlchemyError:  # not migrated yet: real time
            micros = None
        with self._lock:
            self._offset = dt.timedelta(microseconds=micros or 0)
            self._read_at = time.monotonic()
            return self._offset

    def set(self, instant: dt.datetime, actor: Actor, source: Source | str) -> dt.datetime:
        """Make it ``instant`` now (the clock runs on from there); returns the new time."""
        if instant.tzinfo is None:
            raise BadUserInput("the clock needs a time with its offset, like +08:00", field="to")
        return self._store(lambda _stored: instant - self.base(), actor, source, "clock.set")

    def advance(self, step: dt.timedelta, actor: Actor, source: Source | str) -> dt.datetime:
        """Move the clock forward by ``step``; returns the new time."""
        if step <= dt.timedelta():
            raise BadUserInput("the clock only moves forward", field="by")
        # From the stored offset, not this process's copy: another process may have
        # moved the clock within the last REFRESH_SECONDS.
        return self._store(lambda stored: stored + step, actor, source, "clock.advance")

    def reset(self, actor: Actor, source: Source | str) -> dt.datetime:
        """Back to real time."""
        return self._store(lambda _stored: dt.timedelta(), actor, source, "clock.reset")

    def _store(
        self,
        change: Callable[[dt.timedelta], dt.timedelta],
        actor: Actor,
        source: Source | str,
        operation: str,
    ) -> dt.datetime:
        """Write ``change(stored offset)`` under the row's lock, audited in the same transaction."""
        t = clock_offset
        with self.db.write() as conn:
            before = conn.execute(select(t.c.offset_us).with_for_update()).scalar()
            offset = change(dt.timedelta(microseconds=before or 0))
            micros = offset // dt.timedelta(microseconds=1)
            values = {"offset_us": micros, "changed_at": dt.datetime.now(dt.UTC)}
            if before is None:
                conn.execute(t.insert().values(id=1, **values))
            else:
                conn.execute(t.update().where(t.c.id == 1).values(**values))
            wake.notify(conn)  # idle workers recompute what is due
            base = self.base()
            audit_log.record(
                conn,
                actor=actor,
                source=source,
                request_id=uuid.uuid4().hex,
                operation=operation,
                changes={
                    "from": (base + dt.timedelta(microseconds=before or 0)).isoformat(),
                    "to": (base + offset).isoformat(),
                },
            )
        with self._lock:
            self._offset = dt.timedelta(microseconds=micros)
            self._read_at = time.monotonic()
        return self()
