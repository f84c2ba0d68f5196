"""The sync cursor: where a client is in the change feed, as an opaque string.

Clients store it and send it back; they never read it. It holds the feed
position (an audit sequence, qiao.core.records.changes), a digest of the
caller's access and the metadata version when it was issued, a digest of the
entities it was issued for, and, during an initial sync, which entity and
which page of it comes next. Nothing in it is secret or trusted: a client that
edits it only gets changes it may read anyway, or a refusal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from qiao.core.errors import BadUserInput
from qiao.core.permissions.access import Access

_PREFIX = "qs1."


@dataclass(frozen=True)
class Position:
    """A decoded cursor.

    ``since`` is the feed sequence every change after which is still to come.
    While ``initial`` is set the client is paging through its records:
    ``initial[0]`` indexes the (sorted) entities, ``initial[1]`` is the records
    service's page cursor within it (None: its first page).
    """

    since: int
    access: str
    entities: str
    initial: tuple[int, str | None] | None = None

    def encode(self) -> str:
        data = {"s": self.since, "a": self.access, "e": self.entities}
        if self.initial is not None:
            data["i"] = list(self.initial)
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """The position ``cursor`` encodes; BAD_USER_INPUT naming ``cursor`` when it is not one."""
    refused = BadUserInput(
        "this is not a sync cursor; send back a cursor syncPull returned, or none to start "
        "an initial sync",
        field="cursor",
    )
    if not cursor.startswith(_PREFIX) or len(cursor) > 4096:
        raise refused
    body = cursor.removeprefix(_PREFIX)
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if not isinstance(data, dict):
        raise refused
    since, access, entities, initial = data.get("s"), data.get("a"), data.get("e"), data.get("i")
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise refused
    if not isinstance(access, str) or not isinstance(entities, str):
        raise refused
    if initial is None:
        return Position(since, access, entities)
    if (
        not isinstance(initial, list)
        or len(initial) != 2
        or not isinstance(initial[0], int)
        or isinstance(initial[0], bool)
        or initial[0] < 0
        or not (initial[1] is None or isinstance(initial[1], str))
    ):
        raise refused
    return Position(since, access, entities, (initial[0], initial[1]))


def access_digest(access: Access) -> str:
    """What decides which records and fields the caller reads: their access and the
    metadata version. A pull whose cursor carries another digest must start over."""
    text = f"{access.key}:{access.catalog.version}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entities_digest(entities: Sequence[str]) -> str:
    """Which entities a cursor follows (sorted names)."""
    return hashlib.sha256(",".join(entities).encode()).hexdigest()[:16]
