"""Records a connector's worker reads by id because an event, a link or a request names them.

Such a record is there unless it was deleted after the event was written. Then the
worker fails with NOT_FOUND naming the record, as the outbox reports any failure,
rather than with a ``TypeError`` deep in the code that read it.
"""

from __future__ import annotations

from sqlalchemy import Connection

from qiao.api import Actor, NotFound, Record, Runtime

SYSTEM = Actor.system()


def record(runtime: Runtime, conn: Connection, entity: str, record_id: str) -> Record:
    """The record ``record_id`` of ``entity``, read as the system; NOT_FOUND when it is gone."""
    found = runtime.records.get(conn, entity, record_id, actor=SYSTEM)
    if found is None:
        raise NotFound(f"no {entity} {record_id}")
    return found
