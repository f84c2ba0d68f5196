"""Finding the leads, contacts and accounts a new lead may duplicate.

Two lookups share one notion of "the same": equal phone (E.164), equal e-mail
(lower-cased) or equal company key (see :mod:`.keys`). :func:`find_existing`
asks the database with indexed equality queries, for one lead at a time (web
forms, webhooks, the API); :class:`Index` loads every key once, for imports of
many rows, and also remembers the rows of the file itself.

Duplicates are never dropped silently: callers store the matches on the lead
(``duplicate_matches``, ``duplicate_of``) or list them in the import report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from qiao.core.catalog import Catalog
from qiao.plugins.leads.keys import company_key, email_key, phone_key

#: Entity -> (column, key kind) pairs compared with a new lead's keys.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "lead": (("mobile", "phone"), ("email", "email"), ("company_key", "company")),
    "contact": (("mobile", "phone"), ("phone", "phone"), ("email", "email")),
    "account": (("phone", "phone"), ("name_key", "company")),
}
_LABELS = {"lead": "name", "contact": "name", "account": "name"}


@dataclass(frozen=True)
class Match:
    """An existing record (or an earlier row of the same file) that looks like the same party."""

    entity: str
    id: str | None
    by: str
    label: str
    row: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        where = f"row {self.row}" if self.row is not None else f"{self.entity} {self.id}"
        return f"same {self.by} as {where} ({self.label})"


def lead_keys(values: dict[str, Any]) -> dict[str, str]:
    """The comparison keys of a lead's values, by kind."""
    keys = {
        "phone": phone_key(values.get("mobile")),
        "email": email_key(values.get("email")),
        "company": values.get("company_key") or company_key(values.get("company")),
    }
    return {kind: key for kind, key in keys.items() if key}


def find_existing(
    conn: Connection, catalog: Catalog, keys: dict[str, str], exclude_id: str | None = None
) -> list[Match]:
    """Stored leads, contacts and accounts sharing a key, leads first (at most 5 each)."""
    matches: list[Match] = []
    for entity, columns in _COLUMNS.items():
        table = catalog.table(entity)
        tests = [(col, kind) for col, kind in columns if kind in keys]
        if not tests:
            continue
        stmt = (
            select(table.c.id, table.c[_LABELS[entity]], *[table.c[c] for c, _ in tests])
            .where(or_(*[table.c[c] == keys[kind] for c, kind in tests]))
            .order_by(table.c.created_at)
            .limit(5)
        )
        for row in conn.execute(stmt):
            if row.id == exclude_id:
                continue
            by = next(kind for col, kind in tests if row._mapping[col] == keys[kind])
            matches.append(Match(entity, row.id, by, row._mapping[_LABELS[entity]]))
    return matches


class Index:
    """Every stored key plus the keys of the rows seen so far; for imports."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], Match] = {}

    @classmethod
    def load(cls, conn: Connection, catalog: Catalog) -> Index:
        index = cls()
        for entity, columns in _COLUMNS.items():
            table = catalog.table(entity)
            stmt = select(table.c.id, table.c[_LABELS[entity]], *[table.c[c] for c, _ in columns])
            for row in conn.execute(stmt):
                for col, kind in columns:
                    value = row._mapping[col]
                    if value:
                        index._keys.setdefault(
                            (kind, value),
                            Match(entity, row.id, kind, row._mapping[_LABELS[entity]]),
                        )
        return index

    def matches(self, keys: dict[str, str]) -> list[Match]:
        found: dict[tuple[str, str | None, int | None], Match] = {}
        for kind, key in keys.items():
            match = self._keys.get((kind, key))
            if match is not None:
                found.setdefault((match.entity, match.id, match.row), match)
        return list(found.values())

    def add_row(self, row: int, label: str, keys: dict[str, str]) -> None:
        for kind, key in keys.items():
            self._keys.setdefault((kind, key), Match("row", None, kind, label, row))


def first_lead(matches: Iterable[Match]) -> str | None:
    return next((m.id for m in matches if m.entity == "lead" and m.id), None)
