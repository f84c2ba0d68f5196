"""Standard Webhooks 1.0 signatures: HMAC-SHA256 over ``id.timestamp.body``.

The secret is ``whsec_`` followed by base64 key bytes. The
``webhook-signature`` header holds space-separated ``v1,<base64>`` entries
(several during a key rotation); one matching entry is enough. Timestamps
further than five minutes from now, either way, are refused, which with the
stored webhook-ids makes a captured request useless to replay.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

TOLERANCE_SECONDS = 5 * 60
PREFIX = "whsec_"


class SignatureError(ValueError):
    """The signature does not match the secret."""


class TimestampError(ValueError):
    """The timestamp is malformed or outside the tolerance."""


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message (what a sender puts in the header)."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, message_id: str, timestamp: str, body: bytes, header: str, now: float
) -> None:
    """Raise :class:`TimestampError` or :class:`SignatureError` unless the message is genuine."""
    try:
        sent = int(timestamp)
    except ValueError:
        raise TimestampError("webhook-timestamp must be whole seconds since 1970") from None
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise TimestampError("webhook-timestamp is more than 5 minutes away from now")
    expected = sign(secret, message_id, timestamp, body).encode()
    for entry in header.split():
        if entry.startswith("v1,") and hmac.compare_digest(entry.encode(), expected):
            return
    raise SignatureError("no v1 signature in webhook-signature matches the secret")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the channel's secret is not whsec_<base64>") from None
