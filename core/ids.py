"""Record ids: time-ordered UUIDs (version 7, RFC 9562).

Ids are made by Qiao rather than by the database so that offline clients and
importers can name records before they are stored, and so that ids sort
roughly by creation time, which keeps B-tree inserts local.
"""

from __future__ import annotations

import os
import re
import time
import uuid

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_id() -> str:
    """A new UUIDv7 in canonical lower-case text form."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_record_id(value: object) -> bool:
    """Whether ``value`` is a UUID in canonical lower-case text form."""
    return isinstance(value, str) and _UUID_RE.match(value) is not None
