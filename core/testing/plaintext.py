"""Where plaintext that should be encrypted is found: every table, and SQLite's files.

A test of a template or plugin with encrypted fields writes known personal
values through the public paths, then asks :func:`plaintext_hits` where any of
them can still be read in clear. Tables are read with raw SQL (the outbox, the
audit log and the kernel's other tables among them); on SQLite the database
file and its write-ahead log are searched byte for byte too, so free pages and
not yet checkpointed writes count.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url

from qiao.core.runtime import Runtime


def found_in(haystack: str, values: Iterable[str]) -> list[str]:
    """The ``values`` that ``haystack`` holds, compared case-insensitively."""
    lowered = haystack.lower()
    return [v for v in values if v.lower() in lowered]


def plaintext_hits(runtime: Runtime, values: Iterable[str]) -> dict[str, list[str]]:
    """Table (or database file) -> the ``values`` it holds in clear; empty when none.

    Give each value in every form it may be stored or shown in (a phone as
    ``13800138000`` and as its last digits, an e-mail address and its local part).
    """
    wanted = list(values)
    hits: dict[str, list[str]] = {}
    with runtime.db.read() as conn:
        for name in inspect(conn).get_table_names():
            rows = conn.execute(select(text("*")).select_from(text(f'"{name}"'))).all()
            words = found_in(" ".join(repr(tuple(r)) for r in rows), wanted)
            if words:
                hits[name] = words
    if runtime.db.engine.dialect.name == "sqlite":
        database = make_url(runtime.config.database_url).database
        if database and database != ":memory:":
            for path in (Path(database), Path(f"{database}-wal")):
                if path.exists():
                    words = found_in(path.read_bytes().decode("utf-8", "replace"), wanted)
                    if words:
                        hits[path.name] = words
    return hits
