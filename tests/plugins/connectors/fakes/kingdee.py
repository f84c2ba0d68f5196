"""A Kingdee K/3 Cloud Web API server: login services, ExecuteBillQuery and Save.

Like Kingdee, it answers HTTP 200 whatever happens and reports failures in
``Result.ResponseStatus``; a session it has dropped answers MsgCode 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import count
from typing import Any

from starlette.responses import JSONResponse, Response

from .base import FakeVendor, Seen

ACCT = "64f1a2b3c4d5e6"
USER, PASSWORD = "administrator", "888888"
APP_USER, APP_ID, APP_SECRET = "integration", "250001_x", "0f3c9d2e8b7a4c61"
PREFIX = "/k3cloud/"
AUTH = PREFIX + "Kingdee.BOS.WebApi.ServicesStub.AuthService."
FORMS = PREFIX + "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
QUERY = FORMS + "ExecuteBillQuery.common.kdsvc"
SAVE = FORMS + "Save.common.kdsvc"
LOST = "会话信息已丢失，请重新登录"


def status(
    ok: bool, messages: tuple[str, ...] = (), msg_code: int = 0, **extra: Any
) -> dict[str, Any]:
    errors = [{"FieldName": None, "Message": m, "DIndex": 0} for m in messages]
    return {
        "Result": {
            "ResponseStatus": {
                "ErrorCode": 0 if ok else 500,
                "IsSuccess": ok,
                "Errors": errors,
                "SuccessEntitys": extra.pop("entities", []),
                "SuccessMessages": [],
                "MsgCode": msg_code,
            },
            **extra,
        }
    }


class FakeKingdee(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.sessions: set[str] = set()
        self._ids = count(100001)
        self.forms: dict[str, list[dict[str, Any]]] = {"BD_Customer": [], "SAL_SaleOrder": []}
        self.logins = 0

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("POST", AUTH + "ValidateUser.common.kdsvc"): self.validate_user,
            ("POST", AUTH + "LoginByAppSecret.common.kdsvc"): self.app_secret,
            ("POST", QUERY): self.query,
            ("POST", SAVE): self.save,
        }

    def drop_sessions(self) -> None:
        self.sessions.clear()

    def add_customers(self, n: int) -> None:
        for i in range(n):
            self.forms["BD_Customer"].append(
                {
                    "FCUSTID": next(self._ids),
                    "FNumber": f"CUST{i:04d}",
                    "FName": f"客户{i}",
                    "FModifyDate": f"2026-01-{1 + i % 28:02d}T08:00:00",
                }
            )

    def _login(self, ok: bool) -> Response:
        if not ok:
            return JSONResponse(
                {
                    "Message": "用户名或密码错误！",
                    "LoginResultType": 0,
                    "KDSVCSessionId": None,
                    "IsSuccessByAPI": False,
                }
            )
        self.logins += 1
        session = f"sess-{self.logins}"
        self.sessions.add(session)
        response = JSONResponse(
            {
                "Message": None,
                "LoginResultType": 1,
                "KDSVCSessionId": session,
                "Context": {"UserName": USER, "DBid": ACCT},
                "IsSuccessByAPI": True,
            }
        )
        response.set_cookie("kdservice-sessionid", session, path="/")
        return response

    def validate_user(self, seen: Seen) -> Response:
        params = json.loads(seen.body).get("parameters")
        return self._login(params == [ACCT, USER, PASSWORD, 2052])

    def app_secret(self, seen: Seen) -> Response:
        params = json.loads(seen.body).get("parameters")
        return self._login(params == [ACCT, APP_USER, APP_ID, APP_SECRET, 2052])

    def _session_ok(self, seen: Seen) -> bool:
        cookie = seen.headers.get("cookie", "")
        match = re.search(r"kdservice-sessionid=([^;]+)", cookie)
        return match is not None and match.group(1) in self.sessions

    def query(self, seen: Seen) -> Response:
        if not self._session_ok(seen):
            return JSONResponse([[status(False, (LOST,), msg_code=1)]])
        data = json.loads(seen.body)["data"]
        rows = self.forms.get(data["FormId"])
        if rows is None:
            return JSONResponse([[status(False, (f"业务对象{data['FormId']}不存在",))]])
        fields = data["FieldKeys"].split(",")
        unknown = [f for f in fields if rows and f not in rows[0] and not f.startswith("F_")]
        if unknown:
            return JSONResponse([[status(False, (f"字段{unknown[0]}不存在",))]])
        if data.get("FilterString"):
            match = re.fullmatch(r"(\w+) (>=|=) '([^']*)'", data["FilterString"])
            if match is None:
                return JSONResponse([[status(False, ("过滤条件不合法",))]])
            field, op, value = match.groups()
            rows = [
                r
                for r in rows
                if (
                    str(r.get(field, "")) >= value if op == ">=" else str(r.get(field, "")) == value
                )
            ]
        if data.get("OrderString"):
            rows = sorted(rows, key=lambda r: r[data["OrderString"].split()[0]])
        start, limit = int(data.get("StartRow") or 0), int(data.get("Limit") or 0)
        page = rows[start : start + limit] if limit else rows[start:]
        return JSONResponse([[r.get(f) for f in fields] for r in page])

    def save(self, seen: Seen) -> Response:
        if not self._session_ok(seen):
            return JSONResponse(status(False, (LOST,), msg_code=1))
        request = json.loads(seen.body)
        model = request["data"]["Model"]
        if request["formid"] == "SAL_SaleOrder":
            return self.save_order(model)
        if not model.get("FName"):
            return JSONResponse(status(False, ("字段“客户名称”是必填项", "客户编码已存在")))
        new_id = next(self._ids)
        number = model.get("FNumber") or f"CUST{new_id}"
        self.forms.setdefault(request["formid"], []).append(
            {
                "FCUSTID": new_id,
                "FNumber": number,
                "FName": model["FName"],
                "FModifyDate": "2026-02-01T00:00:00",
                # Custom fields (F_ prefix: 自定义字段) are kept as given.
                **{k: v for k, v in model.items() if k.startswith("F_")},
            }
        )
        entity = {"Id": new_id, "Number": number, "DIndex": 0}
        return JSONResponse(status(True, entities=[entity], Id=new_id, Number=number))

    def save_order(self, model: dict[str, Any]) -> Response:
        """A sales order kept as the flat row a bill query of it reads (one entry line)."""
        orders = self.forms.setdefault("SAL_SaleOrder", [])
        lines = model.get("FSaleOrderEntry") or []
        if model.get("FID"):
            found = [o for o in orders if o["FID"] == model["FID"]]
            if not found:
                return JSONResponse(status(False, ("单据不存在",)))
            row = found[0]
            if row["FDocumentStatus"] == "C":
                return JSONResponse(status(False, ("已审核的单据不允许修改",)))
        else:
            if not model.get("FCustId") or not lines:
                return JSONResponse(status(False, ("字段“客户”是必填项",)))
            new_id = next(self._ids)
            row = {
                "FID": new_id,
                "FBillNo": f"XSDD{new_id:06d}",
                "FDocumentStatus": "A",
                "FSaleOrderEntry_FEntryID": new_id * 10,
                "FModifyDate": "2026-02-01T00:00:00",
            }
            orders.append(row)
        if model.get("FCustId"):
            row["FCustId.FNumber"] = model["FCustId"]["FNumber"]
        for line in lines[:1]:
            row["FMaterialId.FNumber"] = line["FMaterialId"]["FNumber"]
            row["FQty"] = float(line["FQty"])
            row["FTaxPrice"] = float(line["FTaxPrice"])
            row["FAllAmount"] = round(row["FQty"] * row["FTaxPrice"], 2)
        row.update({k: v for k, v in model.items() if k.startswith("F_")})
        entity = {"Id": row["FID"], "Number": row["FBillNo"], "DIndex": 0}
        return JSONResponse(status(True, entities=[entity], Id=row["FID"], Number=row["FBillNo"]))
