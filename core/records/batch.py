"""What a batch write answers: the records it created, and the rows it refused by index.

:meth:`~qiao.core.records.service.RecordsService.create_many` checks every
row before writing any, so a caller learns about all its bad rows at once,
each by its position in the input, rather than about the first one only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qiao.core.errors import BadUserInput, QiaoError


@dataclass(frozen=True)
class RowError:
    """One refused row: its index in the input and the error refusing it."""

    index: int
    error: QiaoError

    def as_json(self) -> dict[str, Any]:
        """The row's error as the GraphQL ``extensions.rows`` list holds it."""
        found: dict[str, Any] = {"index": self.index, "code": self.error.code}
        if self.error.field is not None:
            found["field"] = self.error.field
        found["message"] = self.error.message
        return found


class RowsRefused(BadUserInput):
    """Some rows of a batch were refused, so nothing of the batch was written.

    ``rows`` lists every refused row found (its index, field and reason); the
    message names the first. Each row keeps its own error's code (a field the
    caller may not write is FORBIDDEN), in ``extensions.rows``.
    """

    def __init__(self, rows: Sequence[RowError], total: int) -> None:
        first = rows[0]
        super().__init__(
            f"{len(rows)} of {total} rows were refused and nothing was written; "
            f"row {first.index}: {first.error.message}",
            field=first.error.field,
            rows=[r.as_json() for r in rows],
        )
        self.rows = list(rows)


@dataclass
class Created:
    """The outcome of a batch create.

    ``records`` are the created records in input order, ``indexes`` the input
    position of each; ``refused`` holds the rows left out (only when the caller
    asked for invalid rows to be skipped rather than to refuse the batch).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    refused: list[RowError] = field(default_factory=list)


@dataclass
class Upserted:
    """The outcome of a batch upsert.

    ``records`` are the records written, in input order, ``indexes`` the input
    position of each, ``created`` the positions whose row created its record
    (the others updated one); ``refused`` holds the rows left out (only when the
    caller asked for invalid rows to be skipped).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    created: set[int] = field(default_factory=set)
    refused: list[RowError] = field(default_factory=list)
