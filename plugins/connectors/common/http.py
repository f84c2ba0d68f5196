"""HTTP transport errors and statuses mapped to connector errors, the same for every vendor.

Vendor bodies (WeCom's ``errcode``, Kingdee's ``ResponseStatus``) are each vendor's own
business; what this module settles is what HTTP itself says: the connection failed, the
server is failing (5xx), or it asks us to slow down (429 with Retry-After).
"""

from __future__ import annotations

import email.utils
from typing import Any

import httpx

from qiao.plugins.connectors.common.errors import ProtocolError, RateLimitedError, UnavailableError

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: retrying cannot repeat anything."""


def send(http: httpx.Client, vendor: str, request: httpx.Request, now: float) -> httpx.Response:
    """Send ``request``; raise for connection failures, 429 and 5xx, return anything else."""
    try:
        response = http.send(request)
    except NOT_SENT as error:
        raise UnavailableError(vendor, f"cannot reach {request.url.host}: {error}") from error
    except httpx.TransportError as error:
        raise UnavailableError(
            vendor, f"connection to {request.url.host} failed: {error}", maybe_processed=True
        ) from error
    status = response.status_code
    if status == 429:
        raise RateLimitedError(
            vendor,
            "HTTP 429 Too Many Requests",
            code="http_429",
            retry_after=retry_after(response, now),
        )
    if status >= 500:
        raise UnavailableError(
            vendor,
            f"HTTP {status} from {request.url.host}",
            code=f"http_{status}",
            retry_after=retry_after(response, now),
            maybe_processed=status not in (502, 503),
        )
    return response


def retry_after(response: httpx.Response, now: float) -> float | None:
    """The Retry-After header in seconds from ``now`` (delta-seconds or HTTP-date), if any."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def json_of(response: httpx.Response, vendor: str) -> Any:
    """The JSON body of ``response``, or :class:`ProtocolError` naming what came instead."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise ProtocolError(
            vendor, f"HTTP {response.status_code} answer is not JSON ({kind})"
        ) from None


def request_json(
    http: httpx.Client,
    vendor: str,
    method: str,
    url: str,
    now: float,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, Any]:
    """Send a JSON request and return the response with its decoded JSON body."""
    request = http.build_request(method, url, params=params, json=body, headers=headers)
    response = send(http, vendor, request, now)
    return response, json_of(response, vendor)
