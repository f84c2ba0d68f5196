"""An OData v2 or v4 service of S/4HANA (API_BUSINESS_PARTNER, API_SALES_ORDER_SRV, ...).

Reads page by following the server's next link as given (v2 ``d.__next``, v4
``@odata.nextLink``): S/4HANA pages with opaque ``$skiptoken`` links, so the client never
builds its own ``$skip``. Writes need a CSRF token: fetched with ``X-CSRF-Token: Fetch``
on a GET, sent back with the session cookies the HTTP client keeps; a 403 whose
``X-CSRF-Token`` header says ``Required`` fetches a new one once. Updates carry the
entity's ETag in ``If-Match``; 412 means someone else changed it, raised as a conflict.
v2 dates arrive as ``/Date(ms)/`` (or ``/Date(ms+mmmm)/`` with an offset in minutes).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

import httpx

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.client import VendorClient
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    TokenInvalidError,
    VendorError,
)
from qiao.plugins.connectors.common.http import json_of, send
from qiao.plugins.connectors.common.ratelimit import RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import MemoryTokenStore, Token

VENDOR = "sap"
CSRF_LIFETIME = 25 * 60.0
"""SAP's session (and so its CSRF token) lasts 30 minutes idle by default."""

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value: str) -> dt.datetime:
    """A v2 ``/Date(ms)/`` or ``/Date(ms+mmmm)/`` value as an aware datetime.

    The milliseconds count from 1970 in UTC; the optional offset (minutes, as in
    Edm.DateTimeOffset) only says which zone to present it in.
    """
    match = _DATE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an OData v2 date")
    instant = dt.datetime.fromtimestamp(int(match.group(1)) / 1000, dt.UTC)
    if match.group(2):
        minutes = int(match.group(2))
        return instant.astimezone(dt.timezone(dt.timedelta(minutes=minutes)))
    return instant


def decode_dates(value: Any) -> Any:
    """``value`` with every v2 date string inside it turned into a datetime."""
    if isinstance(value, str) and _DATE.match(value):
        return parse_date(value)
    if isinstance(value, dict):
        return {k: decode_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_dates(v) for v in value]
    return value


@dataclass(frozen=True)
class Entity:
    data: dict[str, Any]
    etag: str | None


class ODataClient(VendorClient):
    """One OData service root, e.g. ``.../sap/opu/odata/sap/API_BUSINESS_PARTNER/``.

    Authentication (basic or certificate) belongs to the injected ``httpx.Client``, which
    also keeps the session cookies a CSRF token is bound to; the token is therefore kept
    in this process only.
    """

    vendor = VENDOR

    def __init__(
        self,
        service_url: str,
        *,
        http: httpx.Client,
        version: Literal[2, 4] = 2,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._root = service_url.rstrip("/") + "/"
        self._version = version
        super().__init__(
            http=http,
            token_key=self._root,
            wiring=wiring,
            retry=retry,
            limits=limits,
            token_store=MemoryTokenStore(),
        )

    def entities(
        self, entity_set: str, params: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entity of a set (with ``$filter``, ``$select``... in ``params``), to the end."""
        query = dict(params or {})
        if self._version == 2:
            query.setdefault("$format", "json")
        url: str | None = self._root + entity_set
        page_params: dict[str, str] | None = query
        while url is not None:
            answer = self._read(entity_set, url, page_params)
            rows, link = self._page(answer)
            yield from rows
            url = urljoin(url, link) if link else None
            page_params = None

    def get(self, path: str) -> Entity:
        """One entity by its path, e.g. ``A_BusinessPartner('1000042')``, with its ETag."""
        params = {"$format": "json"} if self._version == 2 else None
        response = self._caller.call(
            f"GET {path.split('(')[0]}",
            lambda _t: self._send("GET", self._root + path, params=params),
            payload=path,
        )
        answer = json_of(response, VENDOR)
        data = answer.get("d", answer) if self._version == 2 else answer
        if not isinstance(data, dict):
            raise ProtocolError(VENDOR, "the entity is not a JSON object")
        return Entity(data, response.headers.get("ETag") or _body_etag(data))

    def create(self, entity_set: str, body: Mapping[str, Any]) -> Entity:
        """POST a new entity; the created entity as the server returned it."""
        response = self._write("POST", entity_set, dict(body), idempotent=False)
        answer = json_of(response, VENDOR)
        data = answer.get("d", answer) if self._version == 2 else answer
        return Entity(data, response.headers.get("ETag") or _body_etag(data))

    def update(self, path: str, changes: Mapping[str, Any], etag: str) -> str | None:
        """PATCH ``changes`` if the entity still has ``etag``; its new ETag, when sent.

        Raises :class:`ConflictError` (412) when it changed since it was read.
        """
        response = self._write("PATCH", path, dict(changes), etag=etag)
        sent: str | None = response.headers.get("ETag")
        return sent

    def _read(self, entity_set: str, url: str, params: dict[str, str] | None) -> Any:
        response = self._caller.call(
            f"GET {entity_set}",
            lambda _t: self._send("GET", url, params=params),
            payload={"url": url, "params": params},
        )
        return json_of(response, VENDOR)

    def _page(self, answer: Any) -> tuple[list[dict[str, Any]], str | None]:
        if self._version == 2:
            d = answer.get("d") if isinstance(answer, dict) else None
            rows = d.get("results") if isinstance(d, dict) else None
            link = d.get("__next") if isinstance(d, dict) else None
        else:
            rows = answer.get("value") if isinstance(answer, dict) else None
            link = answer.get("@odata.nextLink") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise ProtocolError(VENDOR, "a collection answered without its rows")
        return rows, link

    def _write(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        etag: str | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        headers = {"If-Match": etag} if etag is not None else {}

        def attempt(csrf: str | None) -> httpx.Response:
            return self._send(method, self._root + path, body=body, csrf=csrf, headers=headers)

        return self._caller.call(
            f"{method} {path.split('(')[0]}",
            attempt,
            payload=body,
            tokens=self._tokens,
            idempotent=idempotent,
        )

    def _fetch_token(self) -> Token:
        now = self._wiring.clock()
        response = self._caller.call(
            "csrf-fetch",
            lambda _t: self._send("GET", self._root, headers={"X-CSRF-Token": "Fetch"}),
        )
        token = response.headers.get("X-CSRF-Token")
        if not token or token.lower() in ("required", "fetch"):
            raise ProtocolError(VENDOR, "the service did not hand out a CSRF token")
        return Token.issued(token, now, CSRF_LIFETIME)

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        csrf: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if csrf is not None:
            all_headers["X-CSRF-Token"] = csrf
        request = self._http.build_request(
            method, url, params=params, json=body, headers=all_headers
        )
        response = send(self._http, VENDOR, request, self._wiring.clock())
        if response.status_code >= 400:
            raise _error(response)
        return response


def _body_etag(data: Mapping[str, Any]) -> str | None:
    metadata = data.get("__metadata")
    if isinstance(metadata, dict) and metadata.get("etag"):
        return str(metadata["etag"])
    etag = data.get("@odata.etag")
    return str(etag) if etag else None


def _error(response: httpx.Response) -> Exception:
    status = response.status_code
    code: str | None = f"http_{status}"
    message = f"HTTP {status}"
    try:
        error = response.json().get("error", {})
        code = str(error.get("code") or code)
        text = error.get("message")
        message = str(text.get("value") if isinstance(text, dict) else text or message)
    except (ValueError, AttributeError):
        pass
    if status == 403 and response.headers.get("X-CSRF-Token", "").lower() == "required":
        return TokenInvalidError(VENDOR, "CSRF token required or expired", code="csrf_required")
    if status == 401:
        return AuthenticationError(VENDOR, message, code=code)
    if status == 404:
        return NotFoundError(VENDOR, message, code=code)
    if status == 412:
        return ConflictError(VENDOR, f"changed since read: {message}", code=code)
    return VendorError(VENDOR, message, code=code)
