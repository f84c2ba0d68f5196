"""An S/4HANA OData server: API_BUSINESS_PARTNER in v2 and a sales order service in v4.

Pages are two rows long and linked with opaque ``$skiptoken`` values the client must
follow as given (v2 absolute ``__next``, v4 relative ``@odata.nextLink``). Writes need the
CSRF token handed out on a ``Fetch`` GET together with the session cookie it is bound to;
updates need the current ETag in ``If-Match``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from .base import FakeVendor, Seen

V2 = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
V4 = "/sap/opu/odata4/sap/api_salesorder/srvd_a2x/sap/salesorder/0001/"
PAGE = 2


def skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}:{secrets.token_hex(2)}".encode()).decode()


def offset_of(token: str | None) -> int:
    return int(base64.urlsafe_b64decode(token).decode()[1:].split(":")[0]) if token else 0


def error(status: int, code: str, text: str, **headers: str) -> JSONResponse:
    body = {"error": {"code": code, "message": {"lang": "en", "value": text}}}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeSap(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.partners: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.orders = [
            {"SalesOrder": str(5000 + i), "TotalNetAmount": f"{100 * i}.00"} for i in range(5)
        ]
        self.csrf: dict[str, str] = {}

    def add_partners(self, n: int) -> None:
        for i in range(n):
            key = str(1000040 + i)
            self.partners[key] = {
                "BusinessPartner": key,
                "BusinessPartnerFullName": f"宁波客户{i}",
                "LastChangeDate": f"/Date({1767225600000 + i * 86_400_000})/",
            }
            self.versions[key] = 1

    def expire_csrf(self) -> None:
        self.csrf.clear()

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("GET", V2): self.fetch_csrf,
            ("GET", V2 + "A_BusinessPartner"): self.list_v2,
            ("POST", V2 + "A_BusinessPartner"): self.create,
            ("GET", V4 + "SalesOrder"): self.list_v4,
        }

    def other(self, seen: Seen) -> Response:
        match = re.fullmatch(re.escape(V2) + r"A_BusinessPartner\('(\d+)'\)", seen.path)
        if match is None or match.group(1) not in self.partners:
            return error(404, "/IWBEP/CM_MGW_RT/021", "Resource not found")
        if seen.method == "GET":
            return self.get(match.group(1))
        if seen.method == "PATCH":
            return self.patch(seen, match.group(1))
        return error(405, "/IWBEP/CM_MGW_RT/000", "Method not allowed")

    def _etag(self, key: str) -> str:
        return f"W/\"datetimeoffset'2026-01-0{self.versions[key]}T00%3A00%3A00Z'\""

    def _entity(self, key: str) -> dict[str, Any]:
        uri = f"{self.url}{V2}A_BusinessPartner('{key}')"
        meta = {
            "id": uri,
            "uri": uri,
            "type": "API_BUSINESS_PARTNER.A_BusinessPartnerType",
            "etag": self._etag(key),
        }
        return {"__metadata": meta, **self.partners[key]}

    def fetch_csrf(self, seen: Seen) -> Response:
        if seen.headers.get("x-csrf-token", "").lower() != "fetch":
            return JSONResponse({"d": {"EntitySets": ["A_BusinessPartner"]}})
        session, token = secrets.token_hex(8), secrets.token_urlsafe(16)
        self.csrf[session] = token
        response = JSONResponse({"d": {"EntitySets": ["A_BusinessPartner"]}})
        response.headers["X-CSRF-Token"] = token
        response.set_cookie("SAP_SESSIONID_S4H_100", session, path="/")
        return response

    def _csrf_ok(self, seen: Seen) -> bool:
        cookies = dict(
            part.strip().split("=", 1)
            for part in seen.headers.get("cookie", "").split(";")
            if "=" in part
        )
        session = cookies.get("SAP_SESSIONID_S4H_100")
        return session is not None and self.csrf.get(session) == seen.headers.get("x-csrf-token")

    def list_v2(self, seen: Seen) -> Response:
        wants_json = "application/json" in seen.headers.get("accept", "")
        if seen.query.get("$format") != "json" and not wants_json:
            return Response("<feed/>", media_type="application/atom+xml")
        rows = sorted(self.partners)
        start = offset_of(seen.query.get("$skiptoken"))
        page = [self._entity(k) for k in rows[start : start + PAGE]]
        d: dict[str, Any] = {"results": page}
        if start + PAGE < len(rows):
            d["__next"] = f"{self.url}{V2}A_BusinessPartner?$skiptoken={skiptoken(start + PAGE)}"
        return JSONResponse({"d": d})

    def list_v4(self, seen: Seen) -> Response:
        start = offset_of(seen.query.get("$skiptoken"))
        body: dict[str, Any] = {
            "@odata.context": "$metadata#SalesOrder",
            "value": self.orders[start : start + PAGE],
        }
        if start + PAGE < len(self.orders):
            body["@odata.nextLink"] = f"SalesOrder?$skiptoken={skiptoken(start + PAGE)}"
        return JSONResponse(body)

    def get(self, key: str) -> Response:
        return JSONResponse({"d": self._entity(key)}, headers={"ETag": self._etag(key)})

    def create(self, seen: Seen) -> Response:
        if not self._csrf_ok(seen):
            return error(
                403, "CSRF", "CSRF token validation failed", **{"X-CSRF-Token": "Required"}
            )
        body = json.loads(seen.body)
        if not body.get("BusinessPartnerFullName"):
            return error(400, "R11/012", "Enter a name for the business partner")
        key = str(1000040 + len(self.partners))
        self.partners[key] = {
            "BusinessPartner": key,
            **body,
            "LastChangeDate": "/Date(1767225600000)/",
        }
        self.versions[key] = 1
        return JSONResponse(
            {"d": self._entity(key)}, status_code=201, headers={"ETag": self._etag(key)}
        )

    def patch(self, seen: Seen, key: str) -> Response:
        if not self._csrf_ok(seen):
            return error(
                403, "CSRF", "CSRF token validation failed", **{"X-CSRF-Token": "Required"}
            )
        match = seen.headers.get("if-match")
        if match is None:
            return error(428, "/IWBEP/CM_MGW_RT/020", "Precondition required")
        if match != self._etag(key):
            return error(412, "/IWBEP/CM_MGW_RT/022", "Precondition failed")
        self.partners[key].update(json.loads(seen.body))
        self.versions[key] += 1
        return Response(status_code=204, headers={"ETag": self._etag(key)})
