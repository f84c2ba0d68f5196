"""Which entity holds a record id, for ``node(id:)`` and ``nodes(ids:)``.

Record ids are UUIDs that Qiao makes for every record of every entity
(:mod:`qiao.core.ids`): unique across the deployment, so they serve as Relay's
global ids as they are, but they do not name their entity. One statement asks
every entity's table for all the ids at once (an index lookup each); the read
compiler then compiles only the entities that hold some of them, so a node
costs about what its entity's own by-id query costs rather than a branch for
every entity of the deployment.

The answer is not filtered by the caller's rules and never reaches the caller:
it only chooses where the compiled read looks, and that read applies the rules.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Dialect,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from qiao.core.catalog import Catalog
from qiao.core.graphql.sqljson import sql_text
from qiao.core.schema.tables import Tables

#: The lookup's SQL text and its number of positional parameters, per metadata version
#: (its tables) and dialect; dropped with the version.
_statements: WeakKeyDictionary[Tables, dict[str, tuple[str, int]]] = WeakKeyDictionary()
_lock = threading.Lock()


def holders(conn: Connection, catalog: Catalog, ids: Sequence[str]) -> dict[str, str]:
    """Record id -> the entity whose table holds it, for the ids some entity holds."""
    sql, positional = _statement(catalog, conn.dialect)
    wanted = sorted(set(ids))
    # The ids are one parameter: an array on PostgreSQL, a JSON array on SQLite.
    value = wanted if conn.dialect.name == "postgresql" else json.dumps(wanted)
    params = (value,) * positional if positional else {"ids": value}
    found: dict[str, str] = {}
    for entity, record_id in conn.exec_driver_sql(sql, params):
        # Ids are made unique across entities; should two tables share one, the first
        # entity by name answers, every time.
        if record_id not in found or entity < found[record_id]:
            found[record_id] = entity
    return found


def _statement(catalog: Catalog, dialect: Dialect) -> tuple[str, int]:
    """The lookup for ``catalog`` in ``dialect``, compiled once (the same text for any ids)."""
    with _lock:
        cached = _statements.setdefault(catalog.tables, {}).get(dialect.name)
    if cached is not None:
        return cached
    postgres = dialect.name == "postgresql"
    param = bindparam("ids")
    listed = select(literal_column("value")).select_from(func.json_each(param))
    branches = []
    for name in sorted(catalog.registry.entities):
        table = catalog.table(name)
        condition = (
            table.c.id == any_(cast(param, ARRAY(UUID(as_uuid=False))))
            if postgres
            else table.c.id.in_(listed)
        )
        branches.append(
            select(sql_text(name).label("entity"), cast(table.c.id, String).label("id")).where(
                condition
            )
        )
    compiled = union_all(*branches).compile(dialect=dialect)
    made = (str(compiled), len(compiled.positiontup or ()) if compiled.positional else 0)
    with _lock:
        _statements.setdefault(catalog.tables, {})[dialect.name] = made
    return made
