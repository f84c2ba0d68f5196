"""Download links served by the host: HMAC-signed, bound to one key, expiring.

Used by the local-disk store, and by an S3 store that encrypts (its own presigned
links would hand out ciphertext). The signature covers the key, the expiry and the
download name, so none of them can be changed without breaking it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from qiao.plugins.connectors.common.tokens import Clock
from qiao.plugins.connectors.objectstore.base import check_key, check_lifetime


class LinkError(ValueError):
    """A download link is not valid (answer 403)."""


class LinkExpiredError(LinkError):
    """The link was genuine but its time is up (answer 410)."""


@dataclass(frozen=True)
class LinkTarget:
    key: str
    filename: str | None


class LinkSigner:
    """Signs and checks links to ``base_url`` (the host's download route)."""

    def __init__(self, secret: bytes, base_url: str, clock: Clock) -> None:
        if len(secret) < 32:
            raise ValueError("the link secret must be at least 32 bytes")
        self._secret = secret
        self._base = base_url
        self._clock = clock

    def sign(self, key: str, expires_in: int, filename: str | None = None) -> str:
        check_key(key)
        expires = int(self._clock()) + check_lifetime(expires_in)
        query = {"key": key, "expires": str(expires)}
        if filename:
            query["name"] = filename
        query["sig"] = self._signature(key, str(expires), filename or "")
        return f"{self._base}?{urlencode(query)}"

    def verify(self, query: Mapping[str, str]) -> LinkTarget:
        """The object a link's query names, once its signature and expiry check out."""
        key, expires = query.get("key", ""), query.get("expires", "")
        name = query.get("name") or ""
        expected = self._signature(key, expires, name)
        if not hmac.compare_digest(expected.encode(), query.get("sig", "").encode()):
            raise LinkError("the download link's signature does not match")
        if not expires.isdigit() or int(expires) <= self._clock():
            raise LinkExpiredError("the download link has expired")
        return LinkTarget(check_key(key), name or None)

    def _signature(self, key: str, expires: str, filename: str) -> str:
        message = f"{key}\n{expires}\n{filename}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
