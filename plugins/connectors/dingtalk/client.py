"""DingTalk's server APIs for one internal app: token, work notices, approvals.

DingTalk has two API families: the old ``oapi`` (query ``access_token``, HTTP 200 with
``errcode``) and the new ``api.dingtalk.com/v1.0`` (header
``x-acs-dingtalk-access-token``, HTTP 4xx with ``{code, message, requestid}``). A token
from either token endpoint is accepted by both families; ``token_style`` picks the
endpoint. Throttling arrives as 90002 (all APIs of the app), 90018/90019 (this API's QPS),
HTTP 403 ``Forbidden.AccessDenied.QpsLimit...`` on the new family, or, past the per-IP
limit, an HTML block page instead of JSON: each holds the API (or all of them) and
retries after a pause.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.client import VendorClient
from qiao.plugins.connectors.common.errcode import ErrcodeRules
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ProtocolError,
    RateLimitedError,
    TokenInvalidError,
    VendorError,
)
from qiao.plugins.connectors.common.http import json_of, send
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token
from qiao.plugins.connectors.dingtalk.approvals import ApprovalInstance, outcome_of
from qiao.plugins.connectors.dingtalk.stream import OPEN_PATH, Ticket

VENDOR = "dingtalk"
API_BASE = "https://api.dingtalk.com"
OAPI_BASE = "https://oapi.dingtalk.com"
TOKEN_HEADER = "x-acs-dingtalk-access-token"

OLD_RULES = ErrcodeRules(
    vendor=VENDOR,
    token_invalid=frozenset({40014, 42001}),
    credentials=frozenset({40089, 40095}),
    busy=frozenset({-1}),
    throttled={90002: 1.0, 90018: 1.0, 90019: 1.0},
    throttled_everywhere=frozenset({90002}),
    quota=frozenset({90020}),
)
"""40014 invalid and 42001 expired token; 40089 bad appkey/appsecret, 40095 bad appkey;
-1 busy; 90002 over the app's global frequency, 90018/90019 over the API's QPS; 90020
over the monthly quota."""

DEFAULT_RATES = (Rate(20, 1),)
"""About 20 calls a second per app per API, DingTalk's common default."""

BLOCK_PAGE_PAUSE = 20.0
"""The per-IP limit counts 20-second windows (10,000 calls per IP)."""

QPS_PAUSE = 1.0


class DingTalkClient(VendorClient):
    """One internal app (app key and secret) on one HTTP client."""

    vendor = VENDOR
    default_rates = DEFAULT_RATES

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        http: httpx.Client,
        wiring: Wiring | None = None,
        token_style: Literal["new", "old"] = "new",
        api_base: str = API_BASE,
        oapi_base: str = OAPI_BASE,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._app_key = app_key
        self._secret = app_secret
        self._style = token_style
        self._api = api_base.rstrip("/")
        self._oapi = oapi_base.rstrip("/")
        super().__init__(http=http, token_key=app_key, wiring=wiring, retry=retry, limits=limits)

    def send_work_notice(
        self,
        agent_id: int,
        msg: Mapping[str, Any],
        *,
        users: Sequence[str] = (),
        departments: Sequence[str] = (),
        to_all: bool = False,
    ) -> str:
        """Send a work notice (工作通知) and return DingTalk's ``task_id``.

        ``msg`` is DingTalk's message object (``{"msgtype": "text", "text": {...}}``).
        Sending is asynchronous at DingTalk: the task id is what to look up later.
        """
        if not (users or departments or to_all):
            raise ValueError("a work notice needs users, departments or to_all")
        if len(users) > 5000 or len(departments) > 500:
            raise ValueError("a work notice goes to at most 5,000 users and 500 departments")
        if "msgtype" not in msg:
            raise ValueError("a work notice's msg needs its msgtype")
        body: dict[str, Any] = {"agent_id": agent_id, "msg": dict(msg), "to_all_user": to_all}
        if users:
            body["userid_list"] = ",".join(users)
        if departments:
            body["dept_id_list"] = ",".join(departments)
        answer = self._call_oapi(
            "message/corpconversation/asyncsend_v2",
            "/topapi/message/corpconversation/asyncsend_v2",
            body,
            idempotent=False,
        )
        task = answer.get("task_id")
        if task is None:
            raise ProtocolError(VENDOR, "asyncsend_v2 answered without task_id")
        return str(task)

    def departments(self, root: int = 1) -> list[int]:
        """The ids of ``root`` and every department below it (``department/listsub``)."""
        return [int(d["dept_id"]) for d in self.department_tree(root)]

    def department_tree(self, root: int = 1) -> list[dict[str, Any]]:
        """``root`` (``department/get``) and every department below it, parents first:
        ``dept_id``, ``name`` and ``parent_id`` (absent above the root)."""
        answer = self._call_oapi("department/get", "/topapi/v2/department/get", {"dept_id": root})
        top = answer.get("result") or {}
        found = [{"dept_id": root, "name": top.get("name") or str(root)}]
        queue = [root]
        while queue:
            parent = queue.pop(0)
            answer = self._call_oapi(
                "department/listsub", "/topapi/v2/department/listsub", {"dept_id": parent}
            )
            children = [
                {**d, "parent_id": d.get("parent_id", parent)} for d in answer.get("result") or []
            ]
            found.extend(children)
            queue.extend(int(d["dept_id"]) for d in children)
        return found

    def users(self, dept_id: int, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """The users of one department (``user/list``, paged by ``next_cursor`` to the end):
        ``userid``, ``name`` and, where the app may read them, ``mobile`` and ``email``."""
        cursor = 0
        while True:
            body = {"dept_id": dept_id, "cursor": cursor, "size": page_size}
            answer = self._call_oapi("user/list", "/topapi/v2/user/list", body)
            result = answer.get("result") or {}
            yield from result.get("list") or []
            if not result.get("has_more"):
                return
            cursor = int(result["next_cursor"])

    def open_stream(self, subscriptions: Sequence[Mapping[str, str]]) -> Ticket:
        """A Stream-mode endpoint and its one-use ticket (:mod:`.stream`); the app key and
        secret authenticate it, not a token."""
        body = {
            "clientId": self._app_key,
            "clientSecret": self._secret,
            "subscriptions": [dict(s) for s in subscriptions],
            "ua": "qiao-connectors",
        }
        answer = self._caller.call(
            "gateway/connections/open",
            lambda _token: self._api_request("POST", OPEN_PATH, None, body=body),
            payload={"clientId": self._app_key, "subscriptions": body["subscriptions"]},
        )
        if not answer.get("endpoint") or not answer.get("ticket"):
            raise ProtocolError(VENDOR, "connections/open answered without endpoint and ticket")
        return Ticket(str(answer["endpoint"]), str(answer["ticket"]))

    def create_approval(
        self,
        process_code: str,
        originator_user_id: str,
        form: Sequence[tuple[str, str]],
        *,
        dept_id: int | None = None,
        approvers: Sequence[Mapping[str, Any]] = (),
        cc_list: Sequence[str] = (),
    ) -> str:
        """Start an approval instance (the form as name/value pairs); its id."""
        body: dict[str, Any] = {
            "processCode": process_code,
            "originatorUserId": originator_user_id,
            "formComponentValues": [{"name": n, "value": v} for n, v in form],
        }
        if dept_id is not None:
            body["deptId"] = dept_id
        if approvers:
            body["approvers"] = [dict(a) for a in approvers]
        if cc_list:
            body["ccList"] = list(cc_list)
        answer = self._call_api(
            "workflow/processInstances:create",
            "POST",
            "/v1.0/workflow/processInstances",
            body=body,
            idempotent=False,
        )
        instance = answer.get("instanceId")
        if not instance:
            raise ProtocolError(VENDOR, "processInstances answered without instanceId")
        return str(instance)

    def approval(self, instance_id: str) -> ApprovalInstance:
        """An approval instance's status, result and outcome."""
        answer = self._call_api(
            "workflow/processInstances:get",
            "GET",
            "/v1.0/workflow/processInstances",
            params={"processInstanceId": instance_id},
        )
        result = answer.get("result")
        if not isinstance(result, dict) or "status" not in result:
            raise ProtocolError(VENDOR, "processInstances answered without result.status")
        status = str(result["status"])
        verdict = result.get("result") or None
        try:
            outcome = outcome_of(status, verdict)
        except ValueError as error:
            raise ProtocolError(VENDOR, str(error)) from None
        return ApprovalInstance(instance_id, status, verdict, outcome, result)

    def _fetch_token(self) -> Token:
        now = self._wiring.clock()
        if self._style == "new":
            answer = self._caller.call(
                "oauth2/accessToken",
                lambda _t: self._new_token(),
                payload={"appKey": self._app_key},
            )
            value, lifetime = answer.get("accessToken"), answer.get("expireIn")
        else:
            answer = self._caller.call(
                "gettoken",
                lambda _t: self._oapi_request(
                    "GET",
                    "/gettoken",
                    None,
                    params={"appkey": self._app_key, "appsecret": self._secret},
                ),
                payload={"appkey": self._app_key},
            )
            value, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not value:
            raise ProtocolError(VENDOR, "the token endpoint answered without a token")
        return Token.issued(str(value), now, float(lifetime or 7200))

    def _new_token(self) -> dict[str, Any]:
        body = {"appKey": self._app_key, "appSecret": self._secret}
        try:
            return self._api_request("POST", "/v1.0/oauth2/accessToken", None, body=body)
        except TokenInvalidError as error:
            raise AuthenticationError(VENDOR, error.message, code=error.code) from None

    def _call_oapi(
        self, operation: str, path: str, body: dict[str, Any], *, idempotent: bool = True
    ) -> dict[str, Any]:
        return self._caller.call(
            operation,
            lambda token: self._oapi_request("POST", path, token, body=body),
            payload=body,
            tokens=self._tokens,
            idempotent=idempotent,
        )

    def _call_api(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        return self._caller.call(
            operation,
            lambda token: self._api_request(method, path, token, params=params, body=body),
            payload=body if body is not None else params,
            tokens=self._tokens,
            idempotent=idempotent,
        )

    def _oapi_request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        response = self._send(method, self._oapi + path, params=query, body=body)
        return OLD_RULES.check(json_of(response, VENDOR))

    def _api_request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {TOKEN_HEADER: token} if token is not None else {}
        response = self._send(method, self._api + path, params=params, body=body, headers=headers)
        answer = json_of(response, VENDOR)
        if response.status_code >= 400:
            raise _new_style_error(response.status_code, answer)
        if not isinstance(answer, dict):
            raise ProtocolError(VENDOR, "the answer is not a JSON object")
        return answer

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        request = self._http.build_request(
            method, url, params=params, content=content, headers=request_headers
        )
        response = send(self._http, VENDOR, request, self._wiring.clock())
        if response.headers.get("Content-Type", "").startswith("text/html"):
            raise RateLimitedError(
                VENDOR,
                f"HTTP {response.status_code} block page instead of JSON (per-IP limit)",
                code="block_page",
                retry_after=BLOCK_PAGE_PAUSE,
                applies_to_all=True,
            )
        return response


def _new_style_error(status: int, answer: Any) -> Exception:
    code = str(answer.get("code") or f"http_{status}") if isinstance(answer, dict) else None
    message = str(answer.get("message") or "") if isinstance(answer, dict) else ""
    message = message or f"HTTP {status}"
    if code == "InvalidAuthentication" or status == 401:
        return TokenInvalidError(VENDOR, message, code=code)
    if code and code.startswith("Forbidden.AccessDenied.QpsLimit"):
        return RateLimitedError(VENDOR, message, code=code, retry_after=QPS_PAUSE)
    return VendorError(VENDOR, message, code=code)
