"""Sync cursors: how far an incremental pull has read, kept in ``connector_cursor`` records.

A pull asks for rows changed at or after the watermark less an overlap (clocks differ,
and rows committed late carry earlier change dates), so rows near the edge are read
twice; the upserts by external id make the second reading a no-op.
"""

from __future__ import annotations

from qiao.api import Actor, Runtime, Source

SYSTEM = Actor.system()


def key(connector_id: str, stream: str) -> str:
    return f"{connector_id}:{stream}"


def watermark(runtime: Runtime, connector_id: str, stream: str) -> str | None:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn,
            "connector_cursor",
            filter={"key": {"eq": key(connector_id, stream)}},
            first=1,
            actor=SYSTEM,
        )
    return page.records[0]["watermark"] if page.records else None


def advance(
    runtime: Runtime, connector_id: str, stream: str, mark: str | None, pulled: int
) -> None:
    """Store the new watermark (kept when the pull found nothing newer)."""
    values = {
        "key": key(connector_id, stream),
        "connector": connector_id,
        "stream": stream,
        "pulled": pulled,
    }
    if mark is not None:
        values["watermark"] = mark
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        records.upsert(ctx, "connector_cursor", "key", values)
