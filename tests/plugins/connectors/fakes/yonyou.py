"""A Yonyou open API: data-centre discovery, the signed selfAppAuth token, list endpoints.

The tenant's gateway lives under ``/gw`` and its token host under ``/tk`` of the same
server. The signature is checked as Yonyou documents it; tokens live 7200 s.
"""

from __future__ import annotations

import base64
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


class FakeYonyou(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.tokens: set[str] = set()
        self.merchants = [
            {"id": str(i), "code": f"M{i:03d}", "name": f"客户{i}"} for i in range(1, 8)
        ]

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("GET", "/open-auth/dataCenter/getGatewayAddress"): self.discover,
            ("GET", TOKEN_PATH): self.token,
            ("POST", MERCHANTS): self.merchant_list,
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

    def merchant_list(self, seen: Seen) -> Response:
        if seen.query.get("access_token") not in self.tokens:
            return JSONResponse({"code": "310036", "message": "非法token"})
        body: dict[str, Any] = json.loads(seen.body)
        index, size = int(body["pageIndex"]), int(body["pageSize"])
        if size > 500:
            return JSONResponse({"code": "999", "message": "pageSize不能大于500"})
        rows = self.merchants[(index - 1) * size : index * size]
        pages = -(-len(self.merchants) // size)
        data = {
            "pageIndex": index,
            "pageSize": size,
            "recordCount": len(self.merchants),
            "pageCount": pages,
            "recordList": rows,
        }
        return JSONResponse({"code": "200", "message": "操作成功", "data": data})
