"""Yonyou's open API for a self-built app (自建应用): discover, sign, list to the end.

A tenant's data centre has its own gateway and token host, found through
``open-auth/dataCenter/getGatewayAddress?tenantId``. The token comes from
``open-auth/selfAppAuth/getAccessToken`` with ``appKey``, a millisecond ``timestamp``
and ``signature`` = base64(HMAC-SHA256(appSecret, "appKey" + key + "timestamp" + ts)),
URL-encoded once in the query. Discovery and token answer ``code`` "00000"; business
APIs answer "200" (see the docs for this difference with the summary we started from).
List endpoints take ``pageIndex`` (from 1) and ``pageSize`` and return
``data.recordList`` with ``pageCount``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import httpx

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.client import VendorClient
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ProtocolError,
    TokenInvalidError,
    VendorError,
)
from qiao.plugins.connectors.common.http import request_json
from qiao.plugins.connectors.common.ratelimit import RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token

VENDOR = "yonyou"
DISCOVERY_URL = "https://apigateway.yonyoucloud.com"
AUTH_OK = "00000"
API_OK = frozenset({"200", AUTH_OK})
TOKEN_INVALID = frozenset({"310036", "1090003500065"})
"""310036 "非法token", 1090003500065 token expired, as Yonyou's gateway answers them."""

MERCHANTS = "/yonbip/digitalModel/merchant/list"
PRODUCTS = "/yonbip/digitalModel/product/list"
SALES_ORDERS = "/yonbip/sd/voucherorder/list"
SALES_OUTS = "/yonbip/scm/salesout/list"
SALES_ORDER_SAVE = "/yonbip/sd/voucherorder/singleSave"
MERCHANT_SAVE = "/yonbip/digitalModel/merchant/save"


def signature(app_key: str, app_secret: str, timestamp: str) -> str:
    """The selfAppAuth signature before URL encoding (the HTTP client encodes it once)."""
    text = f"appKey{app_key}timestamp{timestamp}"
    digest = hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class YonyouClient(VendorClient):
    """One self-built app of one tenant; give ``tenant_id`` to discover the gateway, or
    ``gateway_url`` and ``token_url`` when they are known."""

    vendor = VENDOR

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        http: httpx.Client,
        tenant_id: str | None = None,
        gateway_url: str | None = None,
        token_url: str | None = None,
        discovery_url: str = DISCOVERY_URL,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        if not tenant_id and not (gateway_url and token_url):
            raise ValueError("give a tenant id, or both the gateway and the token URL")
        self._app_key = app_key
        self._secret = app_secret
        self._tenant = tenant_id
        self._discovery = discovery_url.rstrip("/")
        self._endpoints = (gateway_url, token_url) if gateway_url and token_url else None
        super().__init__(http=http, token_key=app_key, wiring=wiring, retry=retry, limits=limits)

    def endpoints(self) -> tuple[str, str]:
        """``(gateway_url, token_url)`` of the tenant's data centre, discovered once."""
        if self._endpoints is None:
            params = {"tenantId": self._tenant}
            answer = self._caller.call(
                "getGatewayAddress",
                lambda _t: self._get(
                    self._discovery + "/open-auth/dataCenter/getGatewayAddress", params, AUTH_OK
                ),
                payload=params,
            )
            data = answer.get("data") or {}
            gateway, token = data.get("gatewayUrl"), data.get("tokenUrl")
            if not gateway or not token:
                raise ProtocolError(VENDOR, "getGatewayAddress answered without both URLs")
            self._endpoints = (str(gateway).rstrip("/"), str(token).rstrip("/"))
        return self._endpoints

    def records(
        self, path: str, *, page_size: int = 100, conditions: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a list endpoint, from page 1 to the last."""
        gateway, _ = self.endpoints()
        index = 1
        while True:
            body = {**(conditions or {}), "pageIndex": index, "pageSize": page_size}
            answer = self._caller.call(
                path,
                partial(self._post, gateway + path, body),
                payload=body,
                tokens=self._tokens,
            )
            data = answer.get("data") or {}
            records = data.get("recordList") or []
            if not isinstance(records, list):
                raise ProtocolError(VENDOR, f"{path} answered recordList that is not a list")
            yield from records
            pages = data.get("pageCount")
            last = index >= int(pages) if pages is not None else len(records) < page_size
            if last or not records:
                return
            index += 1

    def save(self, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """One ``singleSave`` (``data._status`` ``Insert`` or ``Update``); the saved
        document's ``data``. Not retried after an error that may have reached Yonyou."""
        gateway, _ = self.endpoints()
        body = {"data": dict(data)}
        answer = self._caller.call(
            path,
            lambda token: self._post(gateway + path, body, token),
            payload=body,
            tokens=self._tokens,
            idempotent=False,
        )
        saved = answer.get("data")
        if not isinstance(saved, dict):
            raise ProtocolError(VENDOR, f"{path} answered without the saved document")
        return saved

    def _fetch_token(self) -> Token:
        now = self._wiring.clock()
        _, token_url = self.endpoints()
        stamp = str(int(now * 1000))
        params = {
            "appKey": self._app_key,
            "timestamp": stamp,
            "signature": signature(self._app_key, self._secret, stamp),
        }
        answer = self._caller.call(
            "getAccessToken",
            lambda _t: self._get(
                token_url + "/open-auth/selfAppAuth/getAccessToken", params, AUTH_OK
            ),
            payload={"appKey": self._app_key, "timestamp": stamp},
        )
        data = answer.get("data") or {}
        if not data.get("access_token"):
            raise ProtocolError(VENDOR, "getAccessToken answered without access_token")
        return Token.issued(str(data["access_token"]), now, float(data.get("expire") or 7200))

    def _get(self, url: str, params: dict[str, Any], ok: str) -> dict[str, Any]:
        response, answer = request_json(
            self._http, VENDOR, "GET", url, self._wiring.clock(), params=params
        )
        return _check(response, answer, frozenset({ok}), token_call=True)

    def _post(self, url: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        response, answer = request_json(
            self._http,
            VENDOR,
            "POST",
            url,
            self._wiring.clock(),
            params={"access_token": token},
            body=body,
        )
        return _check(response, answer, API_OK, token_call=False)


def _check(
    response: httpx.Response, answer: Any, ok: frozenset[str], *, token_call: bool
) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ProtocolError(VENDOR, "the answer is not a JSON object")
    code = str(answer.get("code", ""))
    if code in ok and response.status_code < 400:
        return answer
    message = str(answer.get("message") or f"HTTP {response.status_code}")
    if token_call:
        raise AuthenticationError(VENDOR, message, code=code or None)
    if code in TOKEN_INVALID or response.status_code == 401:
        raise TokenInvalidError(VENDOR, message, code=code or None)
    raise VendorError(VENDOR, message, code=code or None)
