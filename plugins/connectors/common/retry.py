"""How long to wait before the next attempt: exponential back-off with full jitter.

Full jitter (a uniform draw between 0 and the exponential cap) spreads the retries of
many clients that failed together, so a vendor coming back from an outage is not hit by
all of them at once. A vendor's own Retry-After is honoured as a floor; one longer than
``max_wait`` is not slept through here but raised, so a queue can reschedule the work
instead of holding a thread.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from qiao.plugins.connectors.common.errors import ConnectorError


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt, for errors that are retryable."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 60.0

    def delay(self, failures: int, error: ConnectorError, rng: random.Random) -> float | None:
        """Seconds to wait after the ``failures``-th failure, or ``None`` to stop retrying."""
        if not error.retryable or failures > self.max_retries:
            return None
        cap = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        backoff = rng.uniform(0, cap)
        if error.retry_after is None:
            return backoff
        if error.retry_after > self.max_wait:
            return None
        return error.retry_after + rng.uniform(0, self.base_delay)
