"""Finding the leads, contacts and accounts a new lead may duplicate.

Two lookups share one notion of "the same": equal phone (E.164), equal e-mail
(lower-cased) or equal company key (see :mod:`.keys`). :func:`find_existing`
asks the records service with ``eq`` filters, for one lead at a time (web
forms, the API), and :func:`find_existing_many` with ``in`` filters for a batch
written together (webhook calls that arrived together); :class:`Index` loads
every key once, for imports of many rows, and also remembers the rows of the
file itself.

A deployment may store phones and e-mail addresses encrypted
(docs/encryption.md). Their columns hold ciphertext, so both lookups compare
blind indexes instead: the records service's ``eq`` filter does it for
:func:`find_existing`, and :class:`Index` keeps the stored indexes and computes
those of each new key. An encrypted field that is not ``searchable: exact``
cannot be compared at all and takes no part in finding duplicates.

Duplicates are never dropped silently: callers store the matches on the lead
(``duplicate_matches``, ``duplicate_of``) or list them in the import report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, select

from qiao.api import Actor, FieldDef, Records, blind_index_column, blind_indexes, scrub
from qiao.plugins.leads.keys import company_key, email_key, phone_key

#: Entity -> (column, key kind) pairs compared with a new lead's keys.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "lead": (("mobile", "phone"), ("email", "email"), ("company_key", "company")),
    "contact": (("mobile", "phone"), ("phone", "phone"), ("email", "email")),
    "account": (("phone", "phone"), ("name_key", "company")),
}
_LABELS = {"lead": "name", "contact": "name", "account": "name"}
#: How a stored value becomes a comparison key of each kind.
_KEY_OF: dict[str, Callable[[Any], str | None]] = {
    "phone": phone_key,
    "email": email_key,
    "company": lambda value: value or None,
}


@dataclass(frozen=True)
class Match:
    """An existing record (or an earlier row of the same file) that looks like the same party."""

    entity: str
    id: str | None
    by: str
    label: str
    row: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The match as kept in ``duplicate_matches``: an encrypted label stays out."""
        kept: dict[str, Any] = scrub({k: v for k, v in asdict(self).items() if v is not None})
        return kept

    def describe(self) -> str:
        """The match in an import report's words (an encrypted label redacted)."""
        where = f"row {self.row}" if self.row is not None else f"{self.entity} {self.id}"
        return f"same {self.by} as {where} ({scrub(self.label)})"


def lead_keys(values: dict[str, Any]) -> dict[str, str]:
    """The comparison keys of a lead's values, by kind."""
    keys = {
        "phone": phone_key(values.get("mobile")),
        "email": email_key(values.get("email")),
        "company": values.get("company_key") or company_key(values.get("company")),
    }
    return {kind: key for kind, key in keys.items() if key}


def _comparable(records: Records, entity: str) -> list[tuple[FieldDef, str]]:
    """The (field, key kind) pairs of ``entity`` that can be compared in the database."""
    declared = records.catalog.entity(entity)
    pairs = []
    for column, kind in _COLUMNS[entity]:
        field = declared.field(column)
        if field is not None and (not field.encrypted or field.searchable):
            pairs.append((field, kind))
    return pairs


#: The most matches of one entity a batch's lookup reads at once (at most 5 a lead
#: are kept); a batch whose keys match more is looked up lead by lead instead.
BATCH_READ = 500


def find_existing(
    conn: Connection, records: Records, keys: dict[str, str], exclude_id: str | None = None
) -> list[Match]:
    """Stored leads, contacts and accounts sharing a key, leads first (at most 5 each)."""
    matches: list[Match] = []
    for entity in _COLUMNS:
        matches += _find_in(conn, records, entity, keys, exclude_id)
    return matches


def _find_in(
    conn: Connection,
    records: Records,
    entity: str,
    keys: dict[str, str],
    exclude_id: str | None = None,
) -> list[Match]:
    """The first 5 stored records of ``entity`` sharing one of ``keys``."""
    tests = [(f, kind) for f, kind in _comparable(records, entity) if kind in keys]
    if not tests:
        return []
    page = records.list(
        conn,
        entity,
        filter={"or": [{f.column: {"eq": keys[kind]}} for f, kind in tests]},
        order_by=[{"field": "created_at"}],
        first=5,
        actor=Actor.system(),
    )
    return _matches(entity, tests, keys, page.records, exclude_id)


def find_existing_many(
    conn: Connection, records: Records, batch: Sequence[dict[str, str]]
) -> list[list[Match]]:
    """:func:`find_existing` for each of a batch's keys, with one query per entity.

    Each entity's stored records sharing any key of the batch are read in
    creation order, then handed to the leads whose keys they share, at most 5
    each: the same matches, in the same order, as looking each lead up alone.
    When more than :data:`BATCH_READ` records match, a lead's first 5 may lie
    past them, so that entity is looked up lead by lead.
    """
    found: list[list[Match]] = [[] for _ in batch]
    for entity in _COLUMNS:
        pairs = _comparable(records, entity)
        sought = {
            field.column: sorted({keys[kind] for keys in batch if kind in keys})
            for field, kind in pairs
        }
        conditions = [{column: {"in": values}} for column, values in sought.items() if values]
        if not conditions:
            continue
        page = records.list(
            conn,
            entity,
            filter={"or": conditions},
            order_by=[{"field": "created_at"}],
            first=BATCH_READ,
            actor=Actor.system(),
        )
        for keys, matches in zip(batch, found, strict=True):
            tests = [(f, kind) for f, kind in pairs if kind in keys]
            if not tests:
                continue
            if page.has_next_page:
                matches += _find_in(conn, records, entity, keys)
                continue
            shared = [r for r in page.records if any(r[f.column] == keys[k] for f, k in tests)]
            matches += _matches(entity, tests, keys, shared[:5])
    return found


def _matches(
    entity: str,
    tests: list[tuple[FieldDef, str]],
    keys: dict[str, str],
    stored: Iterable[dict[str, Any]],
    exclude_id: str | None = None,
) -> list[Match]:
    """``stored`` records of ``entity`` found by ``tests`` as matches, each with the kind
    of key it shares."""
    matches = []
    for record in stored:
        if record["id"] == exclude_id:
            continue
        by = next(
            (kind for f, kind in tests if _KEY_OF[kind](record[f.column]) == keys[kind]),
            tests[0][1],
        )
        matches.append(Match(entity, record["id"], by, record[_LABELS[entity]]))
    return matches


class Index:
    """Every stored key plus the keys of the rows seen so far; for imports.

    Plain columns are remembered by key; encrypted ones by their stored blind
    index, which :meth:`matches` computes for each new key with the entity's
    live index keys, and confirms by reading the record (its value opened): a
    forged or colliding index is no duplicate.
    """

    def __init__(self, records: Records) -> None:
        self._keys: dict[tuple[str, str], Match] = {}
        self._records = records
        #: Encrypted, searchable fields compared through blind indexes: (entity, field, kind).
        self._blind: list[tuple[str, FieldDef, str]] = []
        #: The slots file rows were remembered in, and the rows later rows matched, in order.
        self._added: list[tuple[str, str]] = []
        self._matched: list[int] = []

    @classmethod
    def load(cls, conn: Connection, records: Records) -> Index:
        index = cls(records)
        for entity in _COLUMNS:
            table = records.catalog.table(entity)
            pairs = _comparable(records, entity)
            columns = [blind_index_column(f) if f.encrypted else f.column for f, _ in pairs]
            index._blind += [(entity, f, kind) for f, kind in pairs if f.encrypted]
            stmt = select(table.c.id, table.c[_LABELS[entity]], *[table.c[c] for c in columns])
            for row in conn.execute(stmt):
                for (field, kind), column in zip(pairs, columns, strict=True):
                    value = row._mapping[column]
                    if value:
                        slot = f"{entity}.{field.name}:{value}" if field.encrypted else value
                        index._keys.setdefault(
                            (kind, slot),
                            Match(entity, row.id, kind, row._mapping[_LABELS[entity]]),
                        )
        return index

    def _slots(self, kind: str, key: str) -> list[tuple[str, FieldDef | None]]:
        """Where ``key`` may be remembered: itself, and its blind indexes in encrypted
        fields (with the field, whose value confirms a hit)."""
        slots: list[tuple[str, FieldDef | None]] = [(key, None)]
        for entity, field, blind_kind in self._blind:
            if blind_kind == kind:
                lookup = blind_indexes(self._records, entity, field, key)
                slots += [(f"{entity}.{field.name}:{index}", field) for index in lookup]
        return slots

    def matches(self, keys: dict[str, str], conn: Connection) -> list[Match]:
        """The stored records and earlier rows sharing one of ``keys``."""
        found: dict[tuple[str, str | None, int | None], Match] = {}
        for kind, key in keys.items():
            for slot, field in self._slots(kind, key):
                match = self._keys.get((kind, slot))
                if match is None:
                    continue
                if field is not None and not self._confirmed(conn, match, field, kind, key):
                    continue
                found.setdefault((match.entity, match.id, match.row), match)
        self._matched += [m.row for m in found.values() if m.row is not None]
        return list(found.values())

    def _confirmed(
        self, conn: Connection, match: Match, field: FieldDef, kind: str, key: str
    ) -> bool:
        """Whether the matched record's opened value has ``key``: a blind-index hit alone
        may be a forged or colliding index."""
        assert match.id is not None
        record = self._records.get(conn, match.entity, match.id, actor=Actor.system())
        return record is not None and _KEY_OF[kind](record[field.column]) == key

    def add_row(self, row: int, label: str, keys: dict[str, str]) -> None:
        for kind, key in keys.items():
            if (kind, key) not in self._keys:
                self._keys[(kind, key)] = Match("row", None, kind, label, row)
                self._added.append((kind, key))

    # -- Batches whose rows are remembered before they are written ------------------------

    def mark(self) -> tuple[int, int]:
        """Where the rows remembered and the rows matched stand now (for :meth:`rewind`)."""
        return len(self._added), len(self._matched)

    def rows_matched(self, mark: tuple[int, int]) -> set[int]:
        """The file rows that later rows matched since ``mark``."""
        return set(self._matched[mark[1] :])

    def forget(self, mark: tuple[int, int], rows: Iterable[int] | None = None) -> None:
        """Forget the rows remembered since ``mark`` (only ``rows``, when given): they
        were not written after all."""
        dropped = None if rows is None else set(rows)
        kept = []
        for slot in self._added[mark[0] :]:
            match = self._keys[slot]
            if dropped is None or match.row in dropped:
                del self._keys[slot]
            else:
                kept.append(slot)
        self._added[mark[0] :] = kept
        if dropped is None:
            del self._matched[mark[1] :]


def first_lead(matches: Iterable[Match]) -> str | None:
    return next((m.id for m in matches if m.entity == "lead" and m.id), None)
