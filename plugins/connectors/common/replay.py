"""Replayed callbacks processed once: a store of keys already seen.

Vendors re-send a callback they think was not answered (WeCom three times, DingTalk until
it gets "success"), and anyone holding a captured request can send it again. Each vendor
module derives a key from the message; the first :meth:`SeenKeys.first` for a key wins.
A database-backed store (same method) shares this between processes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_TTL = 24 * 3600.0
"""Longer than any vendor's re-delivery window."""


@dataclass(frozen=True)
class Inbound:
    """A decrypted callback; ``first`` is false for a replay of one already processed."""

    message: dict[str, Any]
    key: str
    first: bool


class SeenKeys(Protocol):
    def first(self, key: str, now: float) -> bool:
        """Record ``key``; true only the first time it is seen within its lifetime."""
        ...


class MemorySeenKeys:
    """A :class:`SeenKeys` for one process, forgetting keys after ``ttl`` seconds."""

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self._ttl = ttl
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first(self, key: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._ttl}
            seen_at = self._seen.get(key)
            if seen_at is not None and now - seen_at < self._ttl:
                return False
            self._seen[key] = now
            return True
