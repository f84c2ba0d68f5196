"""A per-process sliding-window limit on public submissions, per form and client address.

Public routes (intake pages, the leads plugin's web forms and webhooks) count
each client's submissions of the last minute here. Kept in memory: each API
process counts its own clients, so N processes allow up to N times the limit,
which is enough to stop a script hammering a form. Plugins reach it as
``qiao.api.RateLimiter``.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Submissions per (form, client) in the last :data:`WINDOW_SECONDS`."""

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
                self._forget_idle(now)
            return True

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._hits.items() if not v or now - v[-1] >= WINDOW_SECONDS]
        for key in idle:
            del self._hits[key]
