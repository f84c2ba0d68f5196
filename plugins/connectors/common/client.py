"""The base of every vendor's HTTP client: one caller, one token cache, one HTTP client."""

from __future__ import annotations

from typing import ClassVar

import httpx

from qiao.plugins.connectors.common.caller import Caller, Wiring
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token, TokenCache, TokenStore


class VendorClient:
    """Holds what a vendor client injects and builds its :class:`Caller` and token cache.

    Subclasses name their ``vendor`` and published ``default_rates``, pass the key their
    token is stored under (an account's identity, never its secret) and implement
    :meth:`_fetch_token`. ``token_store`` overrides the shared store for tokens bound to
    this process (a CSRF token tied to this HTTP client's session cookies).
    """

    vendor: ClassVar[str]
    default_rates: ClassVar[tuple[Rate, ...]] = ()

    def __init__(
        self,
        *,
        http: httpx.Client,
        token_key: str,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self._wiring = wiring = wiring or Wiring()
        self._http = http
        self._caller = Caller(
            self.vendor,
            wiring,
            retry=retry,
            limits=limits or RateLimits(wiring.clock, wiring.sleep, self.default_rates),
        )
        self._tokens = TokenCache(
            token_store or wiring.tokens,
            f"{self.vendor}:{token_key}",
            self._fetch_token,
            wiring.clock,
        )

    def access_token(self) -> str:
        """The current token (or session), fetched or refreshed as needed."""
        return self._tokens.get()

    def _fetch_token(self) -> Token:
        raise NotImplementedError
