"""Access tokens and sessions, cached in a store that several processes may share.

A :class:`TokenStore` is a key-value store with compare-and-expire: the in-memory one
here serves a single process, a database-backed one (same three methods) lets every
process of a deployment reuse one token instead of each fetching its own, which vendors
count against quotas. :class:`TokenCache` refreshes a token before it expires and forgets
it when the vendor says it is invalid, but only if no one has replaced it meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Clock = Callable[[], float]
"""Seconds since 1970, as ``time.time``; tests pass a clock they can move."""

DEFAULT_REFRESH_MARGIN = 300.0
"""Refresh this long before the vendor's expiry, so a token never expires in flight."""


@dataclass(frozen=True)
class Token:
    """A token's value and the instants (clock seconds) to refresh it and when it expires."""

    value: str
    expires_at: float
    refresh_at: float

    @classmethod
    def issued(
        cls, value: str, now: float, lifetime: float, margin: float = DEFAULT_REFRESH_MARGIN
    ) -> Token:
        """A token valid for ``lifetime`` seconds from ``now``.

        Refresh starts ``margin`` seconds early, but never before half the lifetime, so a
        short-lived token is not fetched again on every call.
        """
        early = min(margin, lifetime / 2)
        return cls(value, now + lifetime, now + lifetime - early)


class TokenStore(Protocol):
    """Where tokens live between calls (and, for a shared store, between processes)."""

    def get(self, key: str) -> Token | None: ...

    def put(self, key: str, token: Token) -> None: ...

    def expire(self, key: str, value: str) -> None:
        """Forget the token under ``key`` if it still has ``value`` (a newer one stays)."""
        ...


class MemoryTokenStore:
    """A :class:`TokenStore` for one process."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Token | None:
        with self._lock:
            return self._tokens.get(key)

    def put(self, key: str, token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def expire(self, key: str, value: str) -> None:
        with self._lock:
            current = self._tokens.get(key)
            if current is not None and current.value == value:
                del self._tokens[key]


class TokenCache:
    """One vendor account's token: served from the store, fetched when missing or due.

    ``fetch`` returns a fresh :class:`Token` (usually through the vendor's own caller, so
    the fetch is rate-limited, retried and recorded like any other call). Within a
    process, concurrent callers wait for one fetch rather than each making their own.
    """

    def __init__(
        self, store: TokenStore, key: str, fetch: Callable[[], Token], clock: Clock
    ) -> None:
        self._store = store
        self._key = key
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()

    def get(self) -> str:
        token = self._fresh()
        if token is not None:
            return token.value
        with self._lock:
            token = self._fresh()
            if token is None:
                token = self._fetch()
                self._store.put(self._key, token)
            return token.value

    def invalidate(self, value: str) -> None:
        """The vendor refused ``value``: drop it so the next :meth:`get` fetches a new one."""
        self._store.expire(self._key, value)

    def _fresh(self) -> Token | None:
        token = self._store.get(self._key)
        if token is None or self._clock() >= token.refresh_at:
            return None
        return token
