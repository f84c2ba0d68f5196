"""Call records: one per attempt at a vendor, handed to an injected sink.

The sink is where the sync log will store them; the record carries no payload, only its
SHA-256, so personal data never reaches the log through this path while identical
payloads (a retried send, a replayed callback) can still be recognised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "partial", "error"]


@dataclass(frozen=True)
class CallRecord:
    """What one attempt did: ``latency_ms`` is wall time spent waiting for the vendor."""

    vendor: str
    operation: str
    status: Status
    latency_ms: float
    payload_sha256: str
    attempt: int
    at: float
    error_code: str | None = None
    error_type: str | None = None
    detail: str | None = None


CallSink = Callable[[CallRecord], None]


def discard(record: CallRecord) -> None:
    """A sink that keeps nothing, for callers that do not log."""


def payload_hash(payload: object) -> str:
    """SHA-256 hex of a payload: bytes as given, text as UTF-8, anything else as canonical JSON.

    Canonical JSON (sorted keys, no spaces) makes the same mapping hash the same whatever
    order it was built in.
    """
    if payload is None:
        data = b""
    elif isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(
            payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        ).encode()
    return hashlib.sha256(data).hexdigest()
