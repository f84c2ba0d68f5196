"""Submissions per form and client address in the last minute, counted in this process.

Enough to stop a script hammering a public form; N API processes allow up to
N times the limit. Each runtime's routes have their own counter.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, form: str, client: str, per_minute: int) -> bool:
        """Count one submission; False when ``client`` made ``per_minute`` in the last minute."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault((form, client), deque())
            while hits and now - hits[0] >= WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= per_minute:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:
                stale = [k for k, v in self._hits.items() if now - v[-1] >= WINDOW_SECONDS]
                for key in stale:
                    del self._hits[key]
            return True
