"""New leads are checked for duplicates and routed one transaction after another.

A new lead looks up the leads stored before it (its duplicates) and the last
assignments of its rule (round robin). Two transactions doing that at once
would each miss the other's lead: both stored as originals, both given to the
same salesperson. So a transaction creating leads holds one lock, from its
first lead's lookups to its commit (a transaction-scoped advisory lock on
PostgreSQL; SQLite admits one writer at a time anyway). Other writes do not
wait for it.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

#: The advisory lock's key, the leads plugin's own (a fixed 64-bit number).
_KEY = -0x1E3B5C7D9F0A2B4C


def hold(conn: Connection) -> None:
    """Take the intake lock until the transaction of ``conn`` ends (taking it again is harmless)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_KEY)))
