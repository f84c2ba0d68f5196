"""A WeCom server: gettoken, message/send, the directory (departments and members) and
the external contact APIs, as published.

Tokens live 7200 s on the fake's clock; ``revoke_tokens(code)`` makes the issued ones
answer 40014 (invalid) or 42001 (expired) as WeCom does when a token dies early.
``per_minute`` enforces a frequency limit answering 45009.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count
from typing import Any

from starlette.responses import JSONResponse, Response

from . import wxcrypt
from .base import FakeVendor, Seen

CORP_ID = "ww0000000000000001"
SECRET = "app-secret-1"
AGENT_ID = 1000002
TOKEN_LIFETIME = 7200


def answer(errcode: int = 0, errmsg: str = "ok", **fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **fields})


class FakeWeCom(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.members = {"zhangsan", "lisi", "wangwu"}
        self.licensed = {"zhangsan", "lisi"}
        self.tokens: dict[str, float] = {}
        self.revoked: dict[str, int] = {}
        self.issued = 0
        self.sent: list[dict[str, Any]] = []
        self.per_minute: int | None = None
        self._minute_calls: dict[int, int] = {}
        self._ids = count(1)
        self.customers: dict[str, dict[str, Any]] = {}
        self.followers: dict[str, list[dict[str, Any]]] = {}
        self.follow_page = 2
        self.profiles = {
            "zhangsan": {"name": "张三", "email": "zhangsan@example.cn", "department": [2]},
            "lisi": {"name": "李四", "email": "lisi@example.cn", "department": [1]},
            "wangwu": {"name": "王五", "email": "", "department": [3]},
        }
        self.departments = [
            {"id": 1, "name": "宁波欧捷泵业", "parentid": 0, "order": 100},
            {"id": 2, "name": "销售部", "parentid": 1, "order": 100},
            {"id": 3, "name": "华东销售组", "parentid": 2, "order": 100},
        ]

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("GET", "/cgi-bin/gettoken"): self.gettoken,
            ("POST", "/cgi-bin/message/send"): self.send,
            ("GET", "/cgi-bin/user/list"): self.user_list,
            ("GET", "/cgi-bin/department/list"): self.department_list,
            ("GET", "/cgi-bin/externalcontact/list"): self.contact_list,
            ("GET", "/cgi-bin/externalcontact/get"): self.contact_get,
            ("POST", "/cgi-bin/externalcontact/batch/get_by_user"): self.by_user,
        }

    def revoke_tokens(self, code: int) -> None:
        for token in self.tokens:
            self.revoked[token] = code

    def add_customer(self, external_userid: str, name: str, followers: list[str]) -> None:
        self.customers[external_userid] = {"external_userid": external_userid, "name": name}
        self.followers[external_userid] = [
            {"userid": userid, "remark": f"{name}@{userid}", "createtime": 1700000000 + i}
            for i, userid in enumerate(followers)
        ]

    def gettoken(self, seen: Seen) -> Response:
        if seen.query.get("corpid") != CORP_ID:
            return answer(40013, "invalid corpid")
        if seen.query.get("corpsecret") != SECRET:
            return answer(40001, "invalid credential")
        self.issued += 1
        token = f"token-{self.issued}"
        self.tokens[token] = self.clock() + TOKEN_LIFETIME
        return answer(access_token=token, expires_in=TOKEN_LIFETIME)

    def _token_error(self, seen: Seen) -> Response | None:
        token = seen.query.get("access_token")
        if not token:
            return answer(41001, "access_token missing")
        if token in self.revoked:
            return answer(self.revoked[token], "access_token expired or invalid")
        expires = self.tokens.get(token)
        if expires is None:
            return answer(40014, "invalid access_token")
        if self.clock() >= expires:
            return answer(42001, "access_token expired")
        if self.per_minute is not None:
            minute = int(self.clock() // 60)
            self._minute_calls[minute] = self._minute_calls.get(minute, 0) + 1
            if self._minute_calls[minute] > self.per_minute:
                return answer(45009, "api freq out of limit")
        return None

    def send(self, seen: Seen) -> Response:
        error = self._token_error(seen)
        if error is not None:
            return error
        body = json.loads(seen.body)
        if body.get("agentid") != AGENT_ID:
            return answer(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "textcard", "markdown", "template_card") or msgtype not in body:
            return answer(40008, "invalid message type")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if users == ["@all"]:
            users = sorted(self.members)
        invalid = [u for u in users if u not in self.members]
        unlicensed = [u for u in users if u in self.members and u not in self.licensed]
        delivered = [u for u in users if u in self.licensed]
        parties = [p for p in str(body.get("toparty", "")).split("|") if p]
        if not delivered:
            return answer(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        msgid = f"msg-{next(self._ids)}"
        self.sent.append({"msgid": msgid, "to": delivered, **body})
        fields: dict[str, Any] = {"msgid": msgid}
        if invalid:
            fields["invaliduser"] = "|".join(invalid)
        if parties:
            fields["invalidparty"] = "|".join(parties)
        if unlicensed:
            fields["unlicenseduser"] = "|".join(unlicensed)
        if msgtype == "template_card":
            fields["response_code"] = f"rc-{msgid}"
        return answer(**fields)

    def user_list(self, seen: Seen) -> Response:
        """Every member when asked for department 1 with fetch_child (the fake's tree is flat)."""
        error = self._token_error(seen)
        if error is not None:
            return error
        if seen.query.get("department_id") != "1" or seen.query.get("fetch_child") != "1":
            return answer(60003, "department not found")
        users = [{"userid": u, **self.profiles[u]} for u in sorted(self.members)]
        return answer(userlist=users)

    def department_list(self, seen: Seen) -> Response:
        """The department ``id`` and every one below it (all of them from the root)."""
        error = self._token_error(seen)
        if error is not None:
            return error
        root = int(seen.query.get("id") or 1)
        if root not in {d["id"] for d in self.departments}:
            return answer(60003, "department not found")
        below, level = [], {root}
        while level:
            found = [d for d in self.departments if d["id"] in level]
            below.extend(found)
            level = {d["id"] for d in self.departments if d["parentid"] in level}
        return answer(department=below)

    def contact_list(self, seen: Seen) -> Response:
        error = self._token_error(seen)
        if error is not None:
            return error
        userid = seen.query.get("userid")
        ids = [c for c, f in self.followers.items() if any(x["userid"] == userid for x in f)]
        if not ids:
            return answer(84061, "not external contact")
        return answer(external_userid=sorted(ids))

    def contact_get(self, seen: Seen) -> Response:
        error = self._token_error(seen)
        if error is not None:
            return error
        external = seen.query.get("external_userid", "")
        if external not in self.customers:
            return answer(84061, "not external contact")
        start = int(seen.query.get("cursor") or 0)
        page = self.followers[external][start : start + self.follow_page]
        end = start + len(page)
        more = end < len(self.followers[external])
        return answer(
            external_contact=self.customers[external],
            follow_user=page,
            next_cursor=str(end) if more else "",
        )

    def by_user(self, seen: Seen) -> Response:
        error = self._token_error(seen)
        if error is not None:
            return error
        body = json.loads(seen.body)
        users = body.get("userid_list") or []
        limit = int(body.get("limit") or 50)
        if not users or len(users) > 100 or limit > 100:
            return answer(40058, "invalid userid_list or limit")
        rows = [
            {"external_contact": self.customers[c], "follow_info": f}
            for c in sorted(self.customers)
            for f in self.followers[c]
            if f["userid"] in users
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + limit]
        end = start + len(page)
        return answer(external_contact_list=page, next_cursor=str(end) if end < len(rows) else "")


def push_xml(
    url: str, token: str, aes_key: str, corp_id: str, message_xml: str, timestamp: str, nonce: str
) -> tuple[str, bytes]:
    """The query string and body WeCom POSTs to a callback URL for ``message_xml``."""
    encrypted = wxcrypt.encrypt(aes_key, corp_id, message_xml.encode())
    signature = wxcrypt.sign(token, timestamp, nonce, encrypted)
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    query = f"msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"
    return f"{url}?{query}", body.encode()
