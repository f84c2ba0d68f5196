"""The bytes an audit MAC covers, and the MACs themselves.

Entry *n*'s MAC is ``HMAC-SM3(key, MAC(n-1) || canonical bytes of entry n)``,
with 32 zero bytes before entry 1. The canonical bytes are a JSON array in a
fixed order that includes the sequence number, so an entry moved to another
place, or a field moved to another entry, changes the MAC. Changes are stored
as the exact JSON text that was MACed, so no database's JSON normalisation can
alter what verification recomputes.

Whoever can write the table can recompute a plain hash chain; without the key,
nobody can produce a MAC that verifies.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qiao.core.crypto.sm3 import hmac_sm3
from qiao.core.storage.types import utc_text

MAC_SIZE = 32
GENESIS_MAC = bytes(MAC_SIZE)
_ENTRY_TAG = b"qiao audit entry v1\x00"
_CHECKPOINT_TAG = b"qiao audit checkpoint v1\x00"
EXPORT_FORMAT = "qiao-audit-checkpoint/1"


@dataclass(frozen=True)
class Entry:
    """One audit entry as stored (``changes`` is canonical JSON text)."""

    sequence: int
    at: dt.datetime
    key_id: str
    actor_id: str | None
    actor: str
    source: str
    request_id: str
    operation: str
    entity: str | None
    record_id: str | None
    changes: str
    mac: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Entry:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def canonical(self) -> bytes:
        """What the MAC covers, besides the previous MAC."""
        fields = [
            self.sequence,
            instant(self.at),
            self.key_id,
            self.actor_id,
            self.actor,
            self.source,
            self.request_id,
            self.operation,
            self.entity,
            self.record_id,
            self.changes,
        ]
        return _ENTRY_TAG + _compact(fields).encode("utf-8")


@dataclass(frozen=True)
class Checkpoint:
    """The chain's state after entry ``sequence``, signed so a copy kept elsewhere is trusted."""

    sequence: int
    mac: str
    at: dt.datetime
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        return _CHECKPOINT_TAG + _compact(
            [self.sequence, self.mac, instant(self.at), self.key_id]
        ).encode("utf-8")

    def export(self) -> dict[str, Any]:
        """The checkpoint as a JSON document, to keep outside the database."""
        return {
            "format": EXPORT_FORMAT,
            "sequence": self.sequence,
            "mac": self.mac,
            "at": instant(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_export(cls, document: Any) -> Checkpoint:
        """Read an exported checkpoint; its signature is checked by verification."""
        if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not an exported audit checkpoint (format {EXPORT_FORMAT!r})")
        try:
            checkpoint = cls(
                sequence=int(document["sequence"]),
                mac=str(document["mac"]),
                at=dt.datetime.fromisoformat(str(document["at"])),
                key_id=str(document["key_id"]),
                signature=str(document["signature"]),
            )
            bytes.fromhex(checkpoint.mac)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"the exported audit checkpoint is incomplete or damaged: {exc}"
            ) from None
        return checkpoint


def entry_mac(key: bytes, previous: bytes, entry: Entry) -> bytes:
    return hmac_sm3(key, previous + entry.canonical())


def checkpoint_signature(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac_sm3(key, checkpoint.signed_bytes()).hex()


def instant(at: dt.datetime) -> str:
    """An instant in the one text form both databases round-trip exactly (microseconds, UTC)."""
    return utc_text(at)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, Unicode kept: equal values always give equal text."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain
    )


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Record values JSON lacks a type for: exact decimals and instants as text."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return instant(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} cannot be written to the audit log")
