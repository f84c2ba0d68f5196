"""Counters in ``qiao_number_sequence``: one row per sequence and period.

:func:`take` adds one to the row in one statement (an upsert with RETURNING,
on SQLite and PostgreSQL), inside the caller's transaction. On PostgreSQL the
updated row stays locked until that transaction ends, so a concurrent create
waits and then takes the next value; if the create rolls back, so does its
increment. That is what makes the numbers gap-free and unique.
"""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from qiao.core.storage.system import number_sequence


def take(conn: Connection, name: str, period: str) -> int:
    """The next value of sequence ``name`` in ``period`` (1 for a new period)."""
    t = number_sequence
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(t).values(name=name, period=period, value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.name, t.c.period], set_={"value": t.c.value + 1}
    ).returning(t.c.value)
    value: int = conn.execute(stmt).scalar_one()
    return value


def current(conn: Connection, name: str | None = None) -> list[tuple[str, str, int]]:
    """``(sequence, period, last value)`` of every counter (or of one sequence)."""
    t = number_sequence
    stmt = select(t.c.name, t.c.period, t.c.value).order_by(t.c.name, t.c.period)
    if name is not None:
        stmt = stmt.where(t.c.name == name)
    return [(str(n), str(p), int(v)) for n, p, v in conn.execute(stmt)]
