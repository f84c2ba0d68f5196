"""Which version of each plugin's content the database holds (``qiao_package``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, insert, select, update

from qiao.core.storage.system import package


def recorded(conn: Connection) -> dict[str, str]:
    """Package name -> the version last applied to this database."""
    return {r.name: r.version for r in conn.execute(select(package.c.name, package.c.version))}


def record(conn: Connection, name: str, version: str, now: dt.datetime) -> None:
    """Remember that ``version`` of ``name`` is applied."""
    found = conn.execute(
        update(package).where(package.c.name == name).values(version=version, updated_at=now)
    )
    if not found.rowcount:
        conn.execute(insert(package).values(name=name, version=version, updated_at=now))


def forget(conn: Connection, name: str) -> None:
    """``name`` is no longer in this database (uninstalled)."""
    conn.execute(delete(package).where(package.c.name == name))
