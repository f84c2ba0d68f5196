"""A DingTalk server: both token endpoints, work notices and approvals, as published.

The new family (``/v1.0/...``) answers errors as HTTP 4xx ``{code, message, requestid}``,
the old one as HTTP 200 ``{errcode, errmsg}``. ``block_page(times)`` answers with the HTML
page DingTalk shows an IP over its limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from . import wxcrypt
from .base import FakeVendor, Seen

APP_KEY = "dingappkey0001"
APP_SECRET = "dingsecret0001"
AGENT_ID = 2_000_001
LIFETIME = 7200
BLOCK_PAGE = "<html><body><h1>访问被拒绝</h1><p>您的请求过于频繁，请稍后再试。</p></body></html>"


def failure(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "requestid": "req-1"}, status)


def old(errcode: int = 0, errmsg: str = "ok", **fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **fields})


class FakeDingTalk(FakeVendor):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self.tokens: dict[str, float] = {}
        self.issued = 0
        self.notices: list[dict[str, Any]] = []
        self.instances: dict[str, dict[str, Any]] = {}
        self._ids = count(1)
        self.tree = {1: [2, 3], 2: [], 3: []}
        self.staff = {
            1: [{"userid": "manager1", "name": "孙主管", "email": "sun@example.cn"}],
            2: [
                {"userid": f"u{i}", "name": f"员工{i}", "email": f"u{i}@example.cn"}
                for i in range(3)
            ],
            3: [{"userid": "zhou1", "name": "周工", "mobile": "13800138000"}],
        }
        self.user_page = 2
        self.names = {1: "宁波欧捷泵业", 2: "销售部", 3: "技术服务部"}
        self.tickets: set[str] = set()
        self.stream_events: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.connections = 0
        self.finished = 0

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        return {
            ("POST", "/v1.0/oauth2/accessToken"): self.new_token,
            ("GET", "/gettoken"): self.old_token,
            ("POST", "/topapi/message/corpconversation/asyncsend_v2"): self.notice,
            ("POST", "/topapi/v2/department/listsub"): self.listsub,
            ("POST", "/topapi/v2/department/get"): self.department_get,
            ("POST", "/topapi/v2/user/list"): self.user_list,
            ("POST", "/v1.0/gateway/connections/open"): self.open_stream,
            ("POST", "/v1.0/workflow/processInstances"): self.create_instance,
            ("GET", "/v1.0/workflow/processInstances"): self.get_instance,
        }

    # -- Stream mode ------------------------------------------------------------------------

    def app(self) -> Starlette:
        app = super().app()
        app.router.routes.insert(0, WebSocketRoute("/gateway/ws", self.stream))
        return app

    def event(self, event_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """An EVENT frame as the gateway sends it (its ``data`` JSON text)."""
        headers = {
            "appId": "app-1",
            "connectionId": f"conn-{self.connections}",
            "contentType": "application/json",
            "messageId": f"msg-{next(self._ids)}",
            "time": str(int(self.clock() * 1000)),
            "topic": "*",
            "eventId": event_id,
            "eventType": event_type,
            "eventBornTime": str(int(self.clock() * 1000)),
            "eventCorpId": "ding6ccabc44d2c8d38b",
        }
        return {"specVersion": "1.0", "type": "EVENT", "headers": headers, "data": json.dumps(data)}

    def open_stream(self, seen: Seen) -> Response:
        body = json.loads(seen.body)
        if body.get("clientId") != APP_KEY or body.get("clientSecret") != APP_SECRET:
            return failure(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
        if not body.get("subscriptions"):
            return failure(400, "invalidParameter", "subscriptions is empty")
        ticket = f"ticket-{next(self._ids)}"
        self.tickets.add(ticket)
        endpoint = self.url.replace("http://", "ws://") + "/gateway/ws"
        return JSONResponse({"endpoint": endpoint, "ticket": ticket})

    async def stream(self, socket: WebSocket) -> None:
        """A ping, then every queued event (each waiting for its answer), then disconnect."""
        ticket = socket.query_params.get("ticket", "")
        if ticket not in self.tickets:
            await socket.close(code=1008)
            return
        self.tickets.discard(ticket)  # one connection per ticket
        self.connections += 1
        await socket.accept()
        ping = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {"topic": "ping", "messageId": "ping-1", "contentType": "application/json"},
            "data": json.dumps({"opaque": "p-1"}),
        }
        for frame in [ping, *self.stream_events]:
            await socket.send_text(json.dumps(frame, ensure_ascii=False))
            self.answers.append(json.loads(await socket.receive_text()))
        disconnect = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {"topic": "disconnect", "messageId": "bye-1"},
            "data": json.dumps({"reason": "server restarting"}),
        }
        await socket.send_text(json.dumps(disconnect))
        self.finished += 1
        await socket.close()

    def block_page(self, path: str, times: int = 1) -> None:
        self.fail(path, HTMLResponse(BLOCK_PAGE, status_code=403), times)

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = self.clock() - 1

    def finish(self, instance_id: str, status: str, result: str = "") -> None:
        self.instances[instance_id].update(status=status, result=result)

    def _issue(self) -> str:
        self.issued += 1
        token = f"dt-token-{self.issued}"
        self.tokens[token] = self.clock() + LIFETIME
        return token

    def _valid(self, token: str | None) -> bool:
        return token is not None and self.tokens.get(token, 0) > self.clock()

    def new_token(self, seen: Seen) -> Response:
        body = json.loads(seen.body)
        if body.get("appKey") != APP_KEY or body.get("appSecret") != APP_SECRET:
            return failure(400, "InvalidAuthentication", "appKey or appSecret is wrong")
        return JSONResponse({"accessToken": self._issue(), "expireIn": LIFETIME})

    def old_token(self, seen: Seen) -> Response:
        if seen.query.get("appkey") != APP_KEY or seen.query.get("appsecret") != APP_SECRET:
            return old(40089, "不合法的corpid或corpsecret")
        return old(access_token=self._issue(), expires_in=LIFETIME)

    def notice(self, seen: Seen) -> Response:
        if not self._valid(seen.query.get("access_token")):
            return old(42001, "access_token超时")
        body = json.loads(seen.body)
        if body.get("agent_id") != AGENT_ID or "msgtype" not in body.get("msg", {}):
            return old(40035, "不合法的参数")
        task = next(self._ids)
        self.notices.append({"task_id": task, **body})
        return old(task_id=task, request_id=f"r{task}")

    def listsub(self, seen: Seen) -> Response:
        if not self._valid(seen.query.get("access_token")):
            return old(42001, "access_token超时")
        dept = int(json.loads(seen.body)["dept_id"])
        if dept not in self.tree:
            return old(60003, "部门不存在")
        children = [
            {"dept_id": d, "name": self.names.get(d, f"部门{d}"), "parent_id": dept}
            for d in self.tree[dept]
        ]
        return old(result=children)

    def department_get(self, seen: Seen) -> Response:
        if not self._valid(seen.query.get("access_token")):
            return old(42001, "access_token超时")
        dept = int(json.loads(seen.body)["dept_id"])
        if dept not in self.tree:
            return old(60003, "部门不存在")
        result: dict[str, Any] = {"dept_id": dept, "name": self.names.get(dept, f"部门{dept}")}
        parents = [p for p, children in self.tree.items() if dept in children]
        if parents:
            result["parent_id"] = parents[0]
        return old(result=result)

    def user_list(self, seen: Seen) -> Response:
        if not self._valid(seen.query.get("access_token")):
            return old(42001, "access_token超时")
        body = json.loads(seen.body)
        size = int(body.get("size") or 0)
        if not 0 < size <= 100:
            return old(40035, "不合法的参数")
        staff = self.staff.get(int(body["dept_id"]), [])
        start = int(body.get("cursor") or 0)
        page = [
            {**u, "dept_id_list": [d for d, people in self.staff.items() if u in people]}
            for u in staff[start : start + min(size, self.user_page)]
        ]
        more = start + len(page) < len(staff)
        result = {"list": page, "has_more": more}
        if more:
            result["next_cursor"] = start + len(page)
        return old(result=result)

    def create_instance(self, seen: Seen) -> Response:
        if not self._valid(seen.headers.get("x-acs-dingtalk-access-token")):
            return failure(401, "InvalidAuthentication", "不合法的access_token")
        body = json.loads(seen.body)
        if not body.get("processCode") or not body.get("originatorUserId"):
            return failure(400, "invalidParameter", "processCode and originatorUserId required")
        instance = f"inst-{next(self._ids)}"
        self.instances[instance] = {"status": "RUNNING", "result": "", "request": body}
        return JSONResponse({"instanceId": instance})

    def get_instance(self, seen: Seen) -> Response:
        if not self._valid(seen.headers.get("x-acs-dingtalk-access-token")):
            return failure(401, "InvalidAuthentication", "不合法的access_token")
        instance = self.instances.get(seen.query.get("processInstanceId", ""))
        if instance is None:
            return failure(400, "instanceNotExist", "审批实例不存在")
        result = {
            "title": "合同用印",
            "status": instance["status"],
            "result": instance["result"],
            "formComponentValues": instance["request"]["formComponentValues"],
        }
        return JSONResponse({"success": True, "result": result})


def push(
    token: str, aes_key: str, owner: str, event: dict[str, Any], ts: str, nonce: str
) -> tuple[dict[str, str], bytes]:
    """The query and body DingTalk POSTs to an HTTP callback URL for ``event``."""
    encrypted = wxcrypt.encrypt(aes_key, owner, json.dumps(event, ensure_ascii=False).encode())
    query = {
        "signature": wxcrypt.sign(token, ts, nonce, encrypted),
        "timestamp": ts,
        "nonce": nonce,
    }
    return query, json.dumps({"encrypt": encrypted}).encode()
