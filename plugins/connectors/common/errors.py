"""Typed connector errors: the vendor's code, and whether trying again can help.

Callers (the retry loop here, the outbox later) decide from the type alone:
:class:`TokenInvalidError` means refresh the token and try once more,
:class:`RateLimitedError` and :class:`UnavailableError` mean wait and retry, every other
error is final for this request. ``retry_after`` carries the vendor's own hint in seconds.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """A call to a vendor failed."""

    retryable = False

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.vendor = vendor
        self.code = None if code is None else str(code)
        self.message = message
        self.retry_after = retry_after
        suffix = f" (code {self.code})" if self.code is not None else ""
        super().__init__(f"{vendor}: {message}{suffix}")


class VendorError(ConnectorError):
    """The vendor refused the request for a reason a retry does not change."""


class NotFoundError(VendorError):
    """The object asked for does not exist at the vendor."""


class RecipientsRejectedError(VendorError):
    """No recipient of a message was valid, so nothing was delivered."""


class AuthenticationError(ConnectorError):
    """The credentials themselves were refused (wrong secret, unknown app): fix the settings."""


class TokenInvalidError(ConnectorError):
    """The access token or session is invalid or expired: refresh it once and retry once."""


class QuotaExceededError(ConnectorError):
    """A long-period quota is used up (e.g. DingTalk's monthly calls); retrying soon is futile."""


class ConflictError(ConnectorError):
    """The object changed since it was read (HTTP 412 on If-Match): read it again, then decide."""


class ProtocolError(ConnectorError):
    """The answer does not follow the vendor's protocol (not JSON, missing fields)."""


class RateLimitedError(ConnectorError):
    """The vendor throttled the call; wait ``retry_after`` seconds (when known) and retry.

    ``applies_to_all`` marks limits that cover every API of the account (DingTalk's
    global 90002, the per-IP block page) rather than the one operation called.
    """

    retryable = True

    def __init__(
        self, vendor: str, message: str, *, applies_to_all: bool = False, **details: Any
    ) -> None:
        super().__init__(vendor, message, **details)
        self.applies_to_all = applies_to_all


class UnavailableError(ConnectorError):
    """The vendor is busy, failing (5xx) or unreachable; a later attempt may succeed.

    ``maybe_processed`` is true when the request may have reached the vendor before the
    failure (a read time-out, an HTTP 500): retrying a non-idempotent write could then
    repeat it, so the retry loop leaves such writes to the caller.
    """

    retryable = True

    def __init__(
        self, vendor: str, message: str, *, maybe_processed: bool = False, **details: Any
    ) -> None:
        super().__init__(vendor, message, **details)
        self.maybe_processed = maybe_processed


class CallbackError(ValueError):
    """An inbound callback is not genuine or cannot be read; answer it with an error status."""


class CallbackSignatureError(CallbackError):
    """The callback's signature does not match the configured token."""


class CallbackDecryptError(CallbackError):
    """The callback's ciphertext does not decrypt to a message for this receiver."""
