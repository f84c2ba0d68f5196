"""A Yonyou open API: data-centre discovery, the signed selfAppAuth token, list endpoints
with ``simpleVOs`` conditions, the merchant's ``save`` and the sales order's ``singleSave``.

The tenant's gateway lives under ``/gw`` and its token host under ``/tk`` of the same
server. The signature is checked as Yonyou documents it; tokens live 7200 s. Lists filter
by ``simpleVOs`` (``egt`` and ``eq``, dotted fields reaching into nested objects) and
answer in storage order, which is not the change order; a save's ``resubmitCheckKey``
seen before is refused as a repeated submission. A saved merchant gets the next ``M``
code and its ``zh_CN`` name; lists answer names as text. The sales outbound list
(销售出库单) answers one row per line: the document's ``id``, ``code``, ``vouchdate`` and
customer (``cust``, ``cust_code``, ``cust_name``) beside the line's ``details_id``,
``product_cCode``, ``qty`` and tax-inclusive ``oriSum``, and the document's ``pubts``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from .base import FakeVendor, Seen

TENANT, APP_KEY, APP_SECRET = "t8k2m4q9", "41832a3d2df94989b500da6a22268747", "s3cr3t-yonyou"
TOKEN_PATH = "/tk/open-auth/selfAppAuth/getAccessToken"
MERCHANTS = "/gw/yonbip/digitalModel/merchant/list"
PRODUCTS = "/gw/yonbip/digitalModel/product/list"
ORDERS = "/gw/yonbip/sd/voucherorder/list"
SALES_OUTS = "/gw/yonbip/scm/salesout/list"
ORDER_SAVE = "/gw/yonbip/sd/voucherorder/singleSave"
MERCHANT_SAVE = "/gw/yonbip/digitalModel/merchant/save"


def field_of(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(row: dict[str, Any], conditions: list[dict[str, Any]]) -> bool:
    for condition in conditions:
        value, wanted = field_of(row, condition["field"]), condition.get("value1")
        if condition["op"] == "egt" and not (value is not None and str(value) >= str(wanted)):
            return False
        if condition["op"] == "eq" and str(value) != str(wanted):
            return False
    return True


class FakeYonyou(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.tokens: set[str] = set()
        self.merchants = [
            {
                "id": str(i),
                "code": f"M{i:03d}",
                "name": f"客户{i}",
                "pubts": f"2026-01-0{i} 08:00:00",
            }
            for i in range(1, 8)
        ]
        self.products: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.sales_outs: list[dict[str, Any]] = []
        self.check_keys: set[str] = set()

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("GET", "/open-auth/dataCenter/getGatewayAddress"): self.discover,
            ("GET", TOKEN_PATH): self.token,
            ("POST", MERCHANTS): lambda seen: self.listing(seen, self.merchants),
            ("POST", PRODUCTS): lambda seen: self.listing(seen, self.products),
            ("POST", ORDERS): lambda seen: self.listing(seen, self.orders),
            ("POST", SALES_OUTS): lambda seen: self.listing(seen, self.sales_outs),
            ("POST", ORDER_SAVE): self.save_order,
            ("POST", MERCHANT_SAVE): self.save_merchant,
        }

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def discover(self, seen: Seen) -> Response:
        if seen.query.get("tenantId") != TENANT:
            return JSONResponse({"code": "500", "message": "根据租户id获取网关地址出现异常"})
        urls = {"gatewayUrl": self.url + "/gw", "tokenUrl": self.url + "/tk"}
        return JSONResponse({"code": "00000", "message": "成功！", "data": urls})

    def token(self, seen: Seen) -> Response:
        key, stamp = seen.query.get("appKey", ""), seen.query.get("timestamp", "")
        expected = base64.b64encode(
            hmac.new(
                APP_SECRET.encode(), f"appKey{key}timestamp{stamp}".encode(), hashlib.sha256
            ).digest()
        ).decode()
        if key != APP_KEY or seen.query.get("signature") != expected:
            return JSONResponse({"code": "10018", "message": "签名校验失败"})
        if abs(int(stamp) / 1000 - self.clock()) > 300:
            return JSONResponse({"code": "10019", "message": "时间戳已过期"})
        token = f"yy-{len(self.tokens) + 1}-{stamp}"
        self.tokens.add(token)
        return JSONResponse(
            {"code": "00000", "message": "成功！", "data": {"access_token": token, "expire": 7200}}
        )

    def listing(self, seen: Seen, table: list[dict[str, Any]]) -> Response:
        if seen.query.get("access_token") not in self.tokens:
            return JSONResponse({"code": "310036", "message": "非法token"})
        body: dict[str, Any] = json.loads(seen.body)
        index, size = int(body["pageIndex"]), int(body["pageSize"])
        if size > 500:
            return JSONResponse({"code": "999", "message": "pageSize不能大于500"})
        found = [r for r in table if matches(r, body.get("simpleVOs") or [])]
        rows = found[(index - 1) * size : index * size]
        pages = -(-len(found) // size)
        data = {
            "pageIndex": index,
            "pageSize": size,
            "recordCount": len(found),
            "pageCount": pages,
            "recordList": rows,
        }
        return JSONResponse({"code": "200", "message": "操作成功", "data": data})

    def save_order(self, seen: Seen) -> Response:
        if seen.query.get("access_token") not in self.tokens:
            return JSONResponse({"code": "310036", "message": "非法token"})
        data: dict[str, Any] = json.loads(seen.body)["data"]
        if data.get("_status") == "Update":
            found = [o for o in self.orders if o["id"] == data.get("id")]
            if not found:
                return JSONResponse({"code": "999", "message": "单据不存在或已被删除"})
            lines = {line["id"]: line for line in found[0]["orderDetails"]}
            for line in data.get("orderDetails") or []:
                lines[line["id"]].update({k: v for k, v in line.items() if k != "_status"})
            header = {k: v for k, v in data.items() if k not in ("orderDetails", "_status")}
            found[0].update(header)
            return JSONResponse({"code": "200", "message": "操作成功", "data": found[0]})
        key = data.get("resubmitCheckKey")
        if key in self.check_keys:
            return JSONResponse({"code": "999", "message": "请勿重复提交"})
        if not data.get("agentId") or not data.get("orderDetails"):
            return JSONResponse({"code": "999", "message": "客户不能为空"})
        self.check_keys.add(key)
        number = len(self.orders) + 1
        order = {
            **{k: v for k, v in data.items() if k not in ("_status", "resubmitCheckKey")},
            "id": f"so{number}",
            "code": f"SO2026{number:04d}",
            "orderDetails": [
                {**{k: v for k, v in line.items() if k != "_status"}, "id": f"sol{number}"}
                for line in data["orderDetails"]
            ],
        }
        self.orders.append(order)
        return JSONResponse({"code": "200", "message": "操作成功", "data": order})

    def save_merchant(self, seen: Seen) -> Response:
        if seen.query.get("access_token") not in self.tokens:
            return JSONResponse({"code": "310036", "message": "非法token"})
        data: dict[str, Any] = json.loads(seen.body)["data"]
        name = (data.get("name") or {}).get("zh_CN")
        if data.get("_status") != "Insert" or not name or not data.get("createOrg"):
            return JSONResponse({"code": "999", "message": "客户名称、管理组织不能为空"})
        number = len(self.merchants) + 1
        stamp = dt.datetime.fromtimestamp(self.clock(), dt.UTC) + dt.timedelta(hours=8)
        merchant = {
            **{k: v for k, v in data.items() if k != "_status"},
            "id": str(number),
            "code": f"M{number:03d}",
            "name": name,
            "pubts": stamp.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.merchants.append(merchant)
        return JSONResponse({"code": "200", "message": "操作成功", "data": merchant})


def sales_out_line(
    document: str, line: str, dealer: str, day: str, amount: str, pubts: str
) -> dict[str, Any]:
    """One row of the sales outbound list: a line of document ``document`` to ``dealer``."""
    return {
        "id": f"so-{document}",
        "code": document,
        "vouchdate": f"{day} 00:00:00",
        "cust": f"c-{dealer}",
        "cust_code": dealer,
        "cust_name": f"客户 {dealer}",
        "details_id": line,
        "product_cCode": "HR-VMC850",
        "qty": 1,
        "oriSum": amount,
        "pubts": pubts,
    }
