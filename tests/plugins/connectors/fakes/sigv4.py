"""Checking an S3 presigned URL the way an S3 server does (AWS Signature Version 4).

moto serves presigned URLs without checking their signature or expiry, so the tests
check both here, from the published algorithm: canonical request, string to sign,
derived signing key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit


class PresignError(ValueError):
    pass


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify(url: str, access_key: str, secret_key: str, region: str, now: float) -> None:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = params.pop("X-Amz-Signature", "")
    credential = params.get("X-Amz-Credential", "")
    amz_date = params.get("X-Amz-Date", "")
    day = amz_date[:8]
    if credential != f"{access_key}/{day}/{region}/s3/aws4_request":
        raise PresignError("credential scope does not match")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    canonical = "\n".join(
        [
            "GET",
            quote(parts.path, safe="/-_.~"),
            canonical_query,
            f"host:{parts.netloc}",
            "",
            params.get("X-Amz-SignedHeaders", ""),
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            f"{day}/{region}/s3/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request"
    )
    if not hmac.compare_digest(
        hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature
    ):
        raise PresignError("signature does not match")
    signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    if now > signed_at.timestamp() + int(params["X-Amz-Expires"]):
        raise PresignError("Request has expired")
