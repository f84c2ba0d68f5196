"""Fields a caller may not read: null in the answer, with a FORBIDDEN error at each path.

The read compiler writes SQL null where a selected field is hidden from the
caller (the database never reads the value) and notes the field's place in the
response as a :class:`Withheld`: response keys, with :data:`EACH` for the items
of a list. Once the rows are in, the places are found in the data: the
compiled path answers one error per place, with the rest of the data intact;
the strawberry path puts a :class:`Refusal` in each place, which the field's
resolver raises, so graphql-core reports it at the same path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qiao.core.errors import Forbidden

#: A path step standing for every item of a list (the edges of a connection).
EACH = None

#: A response key, EACH, or the positions of some items of a list (those of one
#: entity's records in ``nodes(ids:)``, whose items are of several types).
Step = str | tuple[int, ...] | None


@dataclass(frozen=True)
class Withheld:
    """A hidden field's place in the response, from the root field's key down."""

    path: tuple[Step, ...]
    error: Forbidden


@dataclass(frozen=True)
class Refusal:
    """Stands in the data where a withheld field's null is; its resolver raises ``error``."""

    error: Forbidden


def places(data: Any, path: Sequence[Step]) -> Iterator[tuple[dict[str, Any], str, list[Any]]]:
    """Each object holding the field ``path`` leads to, its key, and the concrete path.

    A null on the way (a record outside the caller's rules, an empty relation)
    holds nothing, so no error is reported below it.
    """

    def walk(value: Any, rest: Sequence[Step], at: list[Any]) -> Iterator[Any]:
        step, rest = rest[0], rest[1:]
        if step is EACH or isinstance(step, tuple):
            if isinstance(value, list):
                for i in range(len(value)) if step is EACH else step:
                    yield from walk(value[i], rest, [*at, i])
            return
        if not isinstance(value, dict) or step not in value:
            return
        if not rest:
            yield value, step, [*at, step]
        else:
            yield from walk(value[step], rest, [*at, step])

    yield from walk(data, path, [])


def occurrences(
    data: dict[str, Any], withheld: Sequence[Withheld]
) -> Iterator[tuple[list[Any], Forbidden]]:
    """Each withheld field's concrete path and error, in data keyed by root field."""
    for item in withheld:
        for _, _, path in places(data, item.path):
            yield path, item.error


def refuse(data: Any, withheld: Sequence[Withheld], root: str) -> Any:
    """Put a :class:`Refusal` where each field withheld under root field ``root`` is."""
    for item in withheld:
        for holder, key, _ in places({root: data}, item.path):
            holder[key] = Refusal(item.error)
    return data
