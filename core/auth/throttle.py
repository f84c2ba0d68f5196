"""Counting failed sign-ins per client address and name typed, in the database.

Keys are what the caller sent, never whether the account exists, so every
answer is the same for real and unknown names. Counts live in the database so
every server process of a deployment shares them and an administrator can lift
them (``qiao user unlock NAME``). A count older than :data:`WINDOW` starts over.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, update

from qiao.core.errors import TooManyRequests
from qiao.core.storage import system

#: Failures from one address for one name before that pair is locked out.
LOCK_AFTER = 5
LOCK_FOR = dt.timedelta(minutes=15)
#: Failures from one address, for any names, before the address is refused.
ADDRESS_LIMIT = 20
WINDOW = dt.timedelta(minutes=15)

Key = tuple[str, str]  # (address, username)


def refusal(conn: Connection, key: Key, now: dt.datetime) -> TooManyRequests | None:
    """Why an attempt from ``key`` is refused before any password is checked, if it is."""
    t = system.sign_in_failure
    address, username = key
    recent = conn.execute(
        select(func.coalesce(func.sum(t.c.failures), 0)).where(
            t.c.address == address, t.c.first_at > now - WINDOW
        )
    ).scalar()
    if recent >= ADDRESS_LIMIT:
        return TooManyRequests("too many failed sign-ins from this address; try again later")
    locked = conn.execute(
        select(t.c.locked_until).where(t.c.address == address, t.c.username == username)
    ).scalar()
    if locked is not None and locked > now:
        return TooManyRequests(
            "too many failed sign-ins for this name from this address; try again later"
        )
    return None


def fail(conn: Connection, key: Key, now: dt.datetime) -> int:
    """Count a failure for ``key``; returns the failures for its name from every address."""
    t = system.sign_in_failure
    address, username = key
    where = (t.c.address == address, t.c.username == username)
    row = conn.execute(select(t.c.failures, t.c.first_at).where(*where)).first()
    if row is None:
        conn.execute(insert(t).values(address=address, username=username, failures=1, first_at=now))
        failures = 1
    else:
        fresh = row.first_at <= now - WINDOW
        failures = 1 if fresh else row.failures + 1
        conn.execute(
            update(t)
            .where(*where)
            .values(
                failures=failures,
                first_at=now if fresh else row.first_at,
                locked_until=now + LOCK_FOR if failures >= LOCK_AFTER else None,
            )
        )
    return conn.execute(
        select(func.coalesce(func.sum(t.c.failures), 0)).where(
            t.c.username == username, t.c.first_at > now - WINDOW
        )
    ).scalar()


def forget(conn: Connection, key: Key) -> None:
    """A good password from ``key``: its count starts over."""
    t = system.sign_in_failure
    conn.execute(delete(t).where(t.c.address == key[0], t.c.username == key[1]))


def forget_name(conn: Connection, username: str) -> int:
    """Lift every count and lockout on ``username``; returns how many addresses had one."""
    t = system.sign_in_failure
    return conn.execute(delete(t).where(t.c.username == username)).rowcount
