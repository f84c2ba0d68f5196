"""Kingdee K/3 Cloud's Web API: ``*.common.kdsvc`` services over one session cookie.

Login is ``AuthService.ValidateUser`` (user and password) or ``LoginByAppSecret`` (an
integration user with an app id and secret); both answer ``LoginResultType`` 1 and a
session id, carried as the ``kdservice-sessionid`` cookie. Business calls answer HTTP 200
whatever happened: a failure is a ``ResponseStatus`` with ``IsSuccess`` false, read here
into a typed error with Kingdee's messages; a lost session (MsgCode 1, "会话信息已丢失")
logs in again once. ``ExecuteBillQuery`` returns rows as arrays, paged by ``StartRow`` and
``Limit`` until a short page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
from qiao.plugins.connectors.common.http import json_of, send
from qiao.plugins.connectors.common.ratelimit import RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token

VENDOR = "kingdee"
AUTH = "Kingdee.BOS.WebApi.ServicesStub.AuthService"
FORMS = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService"
SESSION_COOKIE = "kdservice-sessionid"
SESSION_LOST = 1
"""``MsgCode`` of "会话信息已丢失，请重新登录" (the session timed out or was dropped)."""
SESSION_LIFETIME = 20 * 60.0
"""Kingdee drops idle sessions; logging in again before then saves a failed call."""


@dataclass(frozen=True)
class PasswordLogin:
    username: str
    password: str


@dataclass(frozen=True)
class AppSecretLogin:
    """A third-party app authorised in Kingdee's 第三方系统登录授权, acting as ``username``."""

    username: str
    app_id: str
    app_secret: str


@dataclass(frozen=True)
class Saved:
    id: str
    number: str | None


class KingdeeClient(VendorClient):
    """One data centre (``acct_id``) of one K/3 Cloud server, e.g. ``https://erp.example.cn/k3cloud/``."""

    vendor = VENDOR

    def __init__(
        self,
        base_url: str,
        acct_id: str,
        login: PasswordLogin | AppSecretLogin,
        *,
        http: httpx.Client,
        lcid: int = 2052,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._acct_id = acct_id
        self._login = login
        self._lcid = lcid
        super().__init__(
            http=http,
            token_key=f"{self._base}:{acct_id}:{login.username}",
            wiring=wiring,
            retry=retry,
            limits=limits,
        )

    def query(
        self,
        form_id: str,
        fields: Sequence[str],
        *,
        order: str,
        filter: str = "",
        page_size: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """Every row of a bill query as ``{field: value}``, page by page to the end.

        ``order`` is required: without a stable order, rows move between pages while
        paging and some are read twice and others never.
        """
        if not fields:
            raise ValueError("a bill query needs at least one field")
        start = 0
        while True:
            data = {
                "FormId": form_id,
                "FieldKeys": ",".join(fields),
                "FilterString": filter,
                "OrderString": order,
                "TopRowCount": 0,
                "StartRow": start,
                "Limit": page_size,
            }
            rows = self._service("ExecuteBillQuery", {"data": data})
            if not isinstance(rows, list):
                raise ProtocolError(VENDOR, "ExecuteBillQuery did not answer rows")
            for row in rows:
                if not isinstance(row, list) or len(row) != len(fields):
                    raise ProtocolError(VENDOR, "ExecuteBillQuery answered a malformed row")
                yield dict(zip(fields, row, strict=True))
            if len(rows) < page_size:
                return
            start += len(rows)

    def save(
        self,
        form_id: str,
        model: Mapping[str, Any],
        *,
        update_fields: Sequence[str] = (),
        auto_submit_and_audit: bool = False,
    ) -> Saved:
        """Save one bill (create when ``model`` has no id, else update); its id and number."""
        data: dict[str, Any] = {"Model": dict(model), "IsAutoSubmitAndAudit": auto_submit_and_audit}
        if update_fields:
            data["NeedUpDateFields"] = list(update_fields)
        answer = self._service("Save", {"formid": form_id, "data": data}, idempotent=False)
        result = answer.get("Result") if isinstance(answer, dict) else None
        entities = (result or {}).get("ResponseStatus", {}).get("SuccessEntitys") or []
        if not entities:
            raise ProtocolError(VENDOR, "Save succeeded without naming the saved entity")
        entity = entities[0]
        number = entity.get("Number")
        return Saved(str(entity.get("Id")), str(number) if number else None)

    def _fetch_token(self) -> Token:
        now = self._wiring.clock()
        if isinstance(self._login, PasswordLogin):
            op = "ValidateUser"
            secret = self._login.password
        else:
            op = "LoginByAppSecret"
            secret = self._login.app_secret
        params: list[Any] = [self._acct_id, self._login.username]
        if isinstance(self._login, AppSecretLogin):
            params.append(self._login.app_id)
        params += [secret, self._lcid]
        session = self._caller.call(
            op,
            lambda _token: self._log_in(op, {"parameters": params}),
            payload={"acctID": self._acct_id, "username": self._login.username},
        )
        return Token.issued(session, now, SESSION_LIFETIME)

    def _log_in(self, op: str, body: dict[str, Any]) -> str:
        response = self._post(f"{AUTH}.{op}.common.kdsvc", body, None)
        answer = json_of(response, VENDOR)
        if not isinstance(answer, dict) or answer.get("LoginResultType") != 1:
            message = (answer or {}).get("Message") if isinstance(answer, dict) else None
            code = answer.get("LoginResultType") if isinstance(answer, dict) else None
            raise AuthenticationError(VENDOR, message or "login refused", code=code)
        session = response.cookies.get(SESSION_COOKIE) or answer.get("KDSVCSessionId")
        if not session:
            raise ProtocolError(VENDOR, "login succeeded without a session id")
        return str(session)

    def _service(self, op: str, body: dict[str, Any], *, idempotent: bool = True) -> Any:
        def attempt(session: str | None) -> Any:
            answer = json_of(self._post(f"{FORMS}.{op}.common.kdsvc", body, session), VENDOR)
            _raise_for_status(answer)
            return answer

        return self._caller.call(
            op, attempt, payload=body, tokens=self._tokens, idempotent=idempotent
        )

    def _post(self, service: str, body: dict[str, Any], session: str | None) -> httpx.Response:
        request = self._http.build_request("POST", self._base + service, json=body)
        if session is not None:
            request.headers["Cookie"] = f"{SESSION_COOKIE}={session}"
        return send(self._http, VENDOR, request, self._wiring.clock())


def _status_of(answer: Any) -> dict[str, Any] | None:
    """The ``ResponseStatus`` in an answer, wherever Kingdee put it."""
    if isinstance(answer, list) and answer and isinstance(answer[0], list) and answer[0]:
        answer = answer[0][0]
    if isinstance(answer, dict):
        result = answer.get("Result")
        status = result.get("ResponseStatus") if isinstance(result, dict) else None
        if isinstance(status, dict):
            return status
    return None


def _raise_for_status(answer: Any) -> None:
    status = _status_of(answer)
    if status is None or status.get("IsSuccess", True) is not False:
        return
    errors = status.get("Errors") or []
    messages = [str(e.get("Message") or "") for e in errors if isinstance(e, dict)]
    message = "; ".join(m for m in messages if m) or "the call failed"
    code = status.get("MsgCode")
    if code == SESSION_LOST or "会话信息已丢失" in message:
        raise TokenInvalidError(VENDOR, message, code=code)
    raise VendorError(VENDOR, message, code=status.get("ErrorCode") or code)
