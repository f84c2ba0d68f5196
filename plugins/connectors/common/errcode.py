"""Reading ``{"errcode": ..., "errmsg": ...}`` bodies, the error style WeCom and DingTalk share.

Both vendors answer HTTP 200 and put the outcome in ``errcode`` (0 is success); which
codes mean "token expired", "busy" or "too fast" differs, so each vendor declares its
:class:`ErrcodeRules` and this module turns a body into the matching typed error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ProtocolError,
    QuotaExceededError,
    RateLimitedError,
    RecipientsRejectedError,
    TokenInvalidError,
    UnavailableError,
    VendorError,
)


@dataclass(frozen=True)
class ErrcodeRules:
    """What a vendor's error codes mean.

    ``throttled`` maps a code to the seconds to hold the operation; codes also in
    ``throttled_everywhere`` hold every operation of the account.
    """

    vendor: str
    token_invalid: frozenset[int] = frozenset()
    credentials: frozenset[int] = frozenset()
    busy: frozenset[int] = frozenset()
    throttled: Mapping[int, float] = field(default_factory=dict)
    throttled_everywhere: frozenset[int] = frozenset()
    quota: frozenset[int] = frozenset()
    no_recipients: frozenset[int] = frozenset()

    def check(self, body: Any) -> dict[str, Any]:
        """``body`` as a dict when its ``errcode`` is 0 (or absent); else the typed error."""
        if not isinstance(body, dict):
            raise ProtocolError(self.vendor, "the answer is not a JSON object")
        raw = body.get("errcode", 0)
        try:
            code = int(raw)
        except (TypeError, ValueError):
            raise ProtocolError(self.vendor, f"errcode {raw!r} is not a number") from None
        if code == 0:
            return body
        message = str(body.get("errmsg") or "no errmsg")
        if code in self.token_invalid:
            raise TokenInvalidError(self.vendor, message, code=code)
        if code in self.credentials:
            raise AuthenticationError(self.vendor, message, code=code)
        if code in self.busy:
            raise UnavailableError(self.vendor, message, code=code)
        if code in self.throttled:
            raise RateLimitedError(
                self.vendor,
                message,
                code=code,
                retry_after=self.throttled[code],
                applies_to_all=code in self.throttled_everywhere,
            )
        if code in self.quota:
            raise QuotaExceededError(self.vendor, message, code=code)
        if code in self.no_recipients:
            raise RecipientsRejectedError(self.vendor, message, code=code)
        raise VendorError(self.vendor, message, code=code)
