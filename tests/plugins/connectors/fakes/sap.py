"""An S/4HANA OData server: API_BUSINESS_PARTNER and API_PRODUCT_SRV in v2, and a sales
order service in v2 and v4.

Pages are two rows long and linked with opaque ``$skiptoken`` values the client must
follow as given (v2 absolute ``__next``, v4 relative ``@odata.nextLink``). Writes need the
CSRF token handed out on a ``Fetch`` GET together with the session cookie it is bound to;
updates need the current ETag in ``If-Match``. Collections filter by one ``field eq
'value'`` (other filters are not applied); an organisation created with only
``OrganizationBPName1`` gets it as its full name. ``A_Product`` applies a ``LastChangeDate
ge datetime'…'`` filter, orders by (change date, product) and expands ``to_Description``;
``A_SlsPrcgConditionRecord`` filters by ``ConditionType eq`` and ``CreationDate ge`` and
expands ``to_SlsPrcgCndnRecdValidity``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from .base import FakeVendor, Seen

V2 = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
SO = "/sap/opu/odata/sap/API_SALES_ORDER_SRV/"
PRODUCT = "/sap/opu/odata/sap/API_PRODUCT_SRV/"
PRICE = "/sap/opu/odata/sap/API_SLSPRICINGCONDITIONRECORD_SRV/"
DAY_MS = 86_400_000
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
        #: Writes still to refuse with 403 ``Required`` whatever token they carry, as after
        #: the session behind a token timed out between its fetch and the write.
        self.csrf_lapses = 0
        self.sales_orders: dict[str, dict[str, Any]] = {}
        self.products: list[dict[str, Any]] = []
        self.conditions: list[dict[str, Any]] = []

    def add_partners(self, n: int) -> None:
        for i in range(n):
            key = str(1000040 + i)
            self.partners[key] = {
                "BusinessPartner": key,
                "BusinessPartnerFullName": f"宁波客户{i}",
                "LastChangeDate": f"/Date({1767225600000 + i * 86_400_000})/",
            }
            self.versions[key] = 1

    def add_product(self, key: str, day: int, **descriptions: str) -> None:
        """A material changed on 2026-01-``day``, described per language (``ZH="…"``)."""
        texts = [
            {"Product": key, "Language": lang, "ProductDescription": text}
            for lang, text in descriptions.items()
        ]
        self.products.append(
            {
                "Product": key,
                "ProductType": "FERT",
                "LastChangeDate": f"/Date({1767225600000 + (day - 1) * 86_400_000})/",
                "to_Description": {"results": texts},
            }
        )

    def add_price(
        self, material: str, rate: str, created: int, valid: tuple[int, int], org: str = "1710"
    ) -> None:
        """A PPR0 price created on 2026-01-``created``, valid on those days of 2026-01."""
        record = f"{len(self.conditions) + 1:010d}"

        def day(n: int) -> str:
            return f"/Date({1767225600000 + (n - 1) * DAY_MS})/"

        validity = {
            "ConditionRecord": record,
            "ConditionValidityStartDate": day(valid[0]),
            "ConditionValidityEndDate": day(valid[1]),
            "Material": material,
            "SalesOrganization": org,
        }
        self.conditions.append(
            {
                "ConditionRecord": record,
                "ConditionType": "PPR0",
                "ConditionRateValue": rate,
                "ConditionRateValueUnit": "CNY",
                "CreationDate": day(created),
                "to_SlsPrcgCndnRecdValidity": {"results": [validity]},
            }
        )

    def expire_csrf(self) -> None:
        self.csrf.clear()

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("GET", V2): self.fetch_csrf,
            ("GET", V2 + "A_BusinessPartner"): self.list_v2,
            ("POST", V2 + "A_BusinessPartner"): self.create,
            ("GET", V4 + "SalesOrder"): self.list_v4,
            ("GET", SO): self.fetch_csrf,
            ("GET", SO + "A_SalesOrder"): self.list_orders,
            ("POST", SO + "A_SalesOrder"): self.create_order,
            ("GET", PRODUCT + "A_Product"): self.list_products,
            ("GET", PRICE + "A_SlsPrcgConditionRecord"): self.list_prices,
        }

    def other(self, seen: Seen) -> Response:
        if seen.path.startswith(SO) and seen.method == "PATCH":
            return self.patch_order(seen)
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
        if self.csrf_lapses > 0:
            self.csrf_lapses -= 1
            self.csrf.pop(session or "", None)
            return False
        return session is not None and self.csrf.get(session) == seen.headers.get("x-csrf-token")

    def list_v2(self, seen: Seen) -> Response:
        wants_json = "application/json" in seen.headers.get("accept", "")
        if seen.query.get("$format") != "json" and not wants_json:
            return Response("<feed/>", media_type="application/atom+xml")
        rows = sorted(self.partners)
        wanted = re.fullmatch(r"(\w+) eq '([^']*)'", seen.query.get("$filter", ""))
        if wanted:
            field, value = wanted.groups()
            rows = [k for k in rows if str(self.partners[k].get(field)) == value]
        start = offset_of(seen.query.get("$skiptoken"))
        page = [self._entity(k) for k in rows[start : start + PAGE]]
        d: dict[str, Any] = {"results": page}
        if start + PAGE < len(rows):
            d["__next"] = f"{self.url}{V2}A_BusinessPartner?$skiptoken={skiptoken(start + PAGE)}"
        return JSONResponse({"d": d})

    def list_products(self, seen: Seen) -> Response:
        rows = sorted(
            self.products,
            key=lambda p: (int(p["LastChangeDate"][6:-2]), p["Product"]),
        )
        since = re.fullmatch(r"LastChangeDate ge datetime'([^']+)'", seen.query.get("$filter", ""))
        if since:
            bound = dt.datetime.fromisoformat(since.group(1)).replace(tzinfo=dt.UTC)
            ms = int(bound.timestamp() * 1000)
            rows = [p for p in rows if int(p["LastChangeDate"][6:-2]) >= ms]
        elif "$filter" in seen.query:
            return error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
        return self.page_v2(seen, rows, PRODUCT + "A_Product", "to_Description")

    def list_prices(self, seen: Seen) -> Response:
        where = re.fullmatch(
            r"ConditionType eq '(\w+)'(?: and CreationDate ge datetime'([^']+)')?",
            seen.query.get("$filter", ""),
        )
        if where is None:
            return error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
        ms = 0
        if where.group(2):
            bound = dt.datetime.fromisoformat(where.group(2)).replace(tzinfo=dt.UTC)
            ms = int(bound.timestamp() * 1000)
        rows = sorted(
            (
                c
                for c in self.conditions
                if c["ConditionType"] == where.group(1) and int(c["CreationDate"][6:-2]) >= ms
            ),
            key=lambda c: (int(c["CreationDate"][6:-2]), c["ConditionRecord"]),
        )
        link = PRICE + "A_SlsPrcgConditionRecord"
        return self.page_v2(seen, rows, link, "to_SlsPrcgCndnRecdValidity")

    def page_v2(
        self, seen: Seen, rows: list[dict[str, Any]], path: str, navigation: str
    ) -> Response:
        """One v2 page of ``rows``, ``navigation`` kept only when expanded, and an absolute
        ``__next`` repeating the query with the next ``$skiptoken``."""
        expand = seen.query.get("$expand") == navigation
        start = offset_of(seen.query.get("$skiptoken"))
        page = [
            {k: v for k, v in row.items() if expand or k != navigation}
            for row in rows[start : start + PAGE]
        ]
        d: dict[str, Any] = {"results": page}
        if start + PAGE < len(rows):
            query = {k: v for k, v in seen.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = skiptoken(start + PAGE)
            d["__next"] = f"{self.url}{path}?{urlencode(query)}"
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
        body.setdefault("BusinessPartnerFullName", body.get("OrganizationBPName1"))
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

    # -- API_SALES_ORDER_SRV: A_SalesOrder with its items (to_Item) -------------------------

    def _order(self, key: str) -> dict[str, Any]:
        order = self.sales_orders[key]
        items = [
            {
                "__metadata": {"etag": f'W/"{item["version"]}"'},
                **{k: v for k, v in item.items() if k != "version"},
            }
            for item in order["items"]
        ]
        header = {k: v for k, v in order.items() if k not in ("items", "version")}
        return {
            "__metadata": {"etag": f'W/"{order["version"]}"'},
            **header,
            "to_Item": {"results": items},
        }

    def list_orders(self, seen: Seen) -> Response:
        rows = list(self.sales_orders)
        wanted = seen.query.get("$filter")
        if wanted:
            match = re.fullmatch(r"(\w+) eq '([^']*)'", wanted)
            if match is None:
                return error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
            field, value = match.groups()
            rows = [k for k in rows if str(self.sales_orders[k].get(field)) == value]
        return JSONResponse({"d": {"results": [self._order(k) for k in rows]}})

    def create_order(self, seen: Seen) -> Response:
        if not self._csrf_ok(seen):
            return error(
                403, "CSRF", "CSRF token validation failed", **{"X-CSRF-Token": "Required"}
            )
        body = json.loads(seen.body)
        if body.get("SoldToParty") not in self.partners:
            return error(400, "V1/382", f"Sold-to party {body.get('SoldToParty')} not found")
        key = str(1 + len(self.sales_orders))
        items = [
            {"SalesOrder": key, "SalesOrderItem": str(10 * (i + 1)), "version": 1, **item}
            for i, item in enumerate(body.pop("to_Item", []))
        ]
        self.sales_orders[key] = {"SalesOrder": key, **body, "items": items, "version": 1}
        return JSONResponse({"d": self._order(key)}, status_code=201)

    def patch_order(self, seen: Seen) -> Response:
        if not self._csrf_ok(seen):
            return error(
                403, "CSRF", "CSRF token validation failed", **{"X-CSRF-Token": "Required"}
            )
        header = re.fullmatch(re.escape(SO) + r"A_SalesOrder\('(\d+)'\)", seen.path)
        item = re.fullmatch(
            re.escape(SO) + r"A_SalesOrderItem\(SalesOrder='(\d+)',SalesOrderItem='(\d+)'\)",
            seen.path,
        )
        if header and header.group(1) in self.sales_orders:
            target = self.sales_orders[header.group(1)]
        elif item and item.group(1) in self.sales_orders:
            found = [
                i
                for i in self.sales_orders[item.group(1)]["items"]
                if i["SalesOrderItem"] == item.group(2)
            ]
            if not found:
                return error(404, "/IWBEP/CM_MGW_RT/021", "Resource not found")
            target = found[0]
        else:
            return error(404, "/IWBEP/CM_MGW_RT/021", "Resource not found")
        if seen.headers.get("if-match") not in ("*", f'W/"{target["version"]}"'):
            return error(412, "/IWBEP/CM_MGW_RT/022", "Precondition failed")
        target.update(json.loads(seen.body))
        target["version"] += 1
        return Response(status_code=204)
