"""WeCom's server API for one self-built app: token, app messages, external contacts.

Every call goes through a :class:`~qiao.plugins.connectors.common.caller.Caller`:
the token is cached in the injected store and refreshed before it expires and on 40014
(invalid) or 42001 (expired), ``-1`` (busy) is retried up to three times, 45009
(frequency limit) and 45033 (concurrency) hold the API, and every attempt is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.client import VendorClient
from qiao.plugins.connectors.common.errcode import ErrcodeRules
from qiao.plugins.connectors.common.errors import ProtocolError
from qiao.plugins.connectors.common.http import request_json
from qiao.plugins.connectors.common.ratelimit import Rate, RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.common.tokens import Token
from qiao.plugins.connectors.wecom.messages import Message, Recipients, SendOptions, SendResult

VENDOR = "wecom"
BASE_URL = "https://qyapi.weixin.qq.com"

RULES = ErrcodeRules(
    vendor=VENDOR,
    token_invalid=frozenset({40014, 42001, 41001}),
    credentials=frozenset({40001, 40013, 40056, 40091}),
    busy=frozenset({-1}),
    throttled={45009: 60.0, 45033: 1.0},
    no_recipients=frozenset({81013}),
)
"""40014 invalid and 42001 expired token (expiry often arrives as 40014), 41001 missing
token; 40001 bad secret, 40013 bad corp id, 40056 bad agent id, 40091 bad secret format;
-1 busy; 45009 over the per-minute frequency (held for the rest of a minute), 45033 over
the concurrency limit; 81013 every recipient invalid."""

DEFAULT_RATES = (Rate(10_000, 60), Rate(150_000, 3600))
"""Per API per corp, as published."""

NO_EXTERNAL_CONTACT = 84061
"""externalcontact/list: the member has no external contacts (not an error for a sync)."""

BATCH_USERS = 100
BATCH_LIMIT = 100


@dataclass(frozen=True)
class ExternalContact:
    """A customer (外部联系人) and the members who follow them, all pages of them."""

    external_userid: str
    profile: dict[str, Any]
    follow_users: tuple[dict[str, Any], ...]


class WeComClient(VendorClient):
    """One self-built app (corp id, its secret and agent id) on one HTTP client."""

    vendor = VENDOR
    default_rates = DEFAULT_RATES

    def __init__(
        self,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        *,
        http: httpx.Client,
        wiring: Wiring | None = None,
        base_url: str = BASE_URL,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._corp_id = corp_id
        self._secret = corp_secret
        self.agent_id = agent_id
        self._base = base_url.rstrip("/")
        super().__init__(
            http=http,
            token_key=f"{corp_id}:{agent_id}",
            wiring=wiring,
            retry=retry,
            limits=limits,
        )

    def send_message(
        self, recipients: Recipients, message: Message, options: SendOptions | None = None
    ) -> SendResult:
        """Send an app message. Invalid recipients are reported, not raised; only when no
        recipient is valid (81013) does it raise ``RecipientsRejectedError``."""
        options = options or SendOptions()
        body: dict[str, Any] = {
            **recipients.fields(),
            "msgtype": message.msgtype,
            "agentid": self.agent_id,
            message.msgtype: message.body(),
            **options.fields(),
        }
        answer = self._api(
            "message/send",
            "POST",
            "/cgi-bin/message/send",
            body=body,
            idempotent=options.duplicate_check_seconds is not None,
            partial=lambda a: _send_result(a).shortfall(),
        )
        return _send_result(answer)

    def members(self, department_id: int = 1) -> list[dict[str, Any]]:
        """Every member of a department and the departments below it (``user/list`` with
        ``fetch_child``): ``userid``, ``name``, ``department`` and, where the app may read
        them, ``mobile`` and ``email``."""
        answer = self._api(
            "user/list",
            "GET",
            "/cgi-bin/user/list",
            params={"department_id": department_id, "fetch_child": 1},
        )
        return list(answer.get("userlist") or [])

    def departments(self, department_id: int = 1) -> list[dict[str, Any]]:
        """A department and every one below it (``department/list``): ``id``, ``name``,
        ``parentid`` (0 above the root) and ``order``."""
        answer = self._api(
            "department/list", "GET", "/cgi-bin/department/list", params={"id": department_id}
        )
        return list(answer.get("department") or [])

    def external_contact_ids(self, userid: str) -> list[str]:
        """The external user ids of a member's customers (empty when there are none)."""
        answer = self._api(
            "externalcontact/list",
            "GET",
            "/cgi-bin/externalcontact/list",
            params={"userid": userid},
            allow={NO_EXTERNAL_CONTACT},
        )
        return [str(i) for i in answer.get("external_userid") or []]

    def external_contact(self, external_userid: str) -> ExternalContact:
        """One customer with every member following them, following ``next_cursor`` to the end."""
        follow: list[dict[str, Any]] = []
        cursor = ""
        profile: dict[str, Any] = {}
        while True:
            params = {"external_userid": external_userid}
            if cursor:
                params["cursor"] = cursor
            answer = self._api(
                "externalcontact/get", "GET", "/cgi-bin/externalcontact/get", params=params
            )
            profile = answer.get("external_contact") or profile
            follow.extend(answer.get("follow_user") or [])
            cursor = answer.get("next_cursor") or ""
            if not cursor:
                break
        if not profile:
            raise ProtocolError(VENDOR, "externalcontact/get answered without external_contact")
        return ExternalContact(external_userid, profile, tuple(follow))

    def external_contacts_of(
        self, userids: Sequence[str], limit: int = BATCH_LIMIT
    ) -> Iterator[dict[str, Any]]:
        """Every ``{external_contact, follow_info}`` of up to 100 members, page by page."""
        if not 0 < len(userids) <= BATCH_USERS:
            raise ValueError(f"batch/get_by_user takes 1 to {BATCH_USERS} member ids")
        if not 0 < limit <= BATCH_LIMIT:
            raise ValueError(f"batch/get_by_user pages hold 1 to {BATCH_LIMIT} contacts")
        cursor = ""
        while True:
            body = {"userid_list": list(userids), "cursor": cursor, "limit": limit}
            answer = self._api(
                "externalcontact/batch/get_by_user",
                "POST",
                "/cgi-bin/externalcontact/batch/get_by_user",
                body=body,
            )
            yield from answer.get("external_contact_list") or []
            cursor = answer.get("next_cursor") or ""
            if not cursor:
                return

    def _fetch_token(self) -> Token:
        now = self._wiring.clock()
        answer = self._caller.call(
            "gettoken",
            lambda _token: self._request(
                "GET",
                "/cgi-bin/gettoken",
                None,
                params={"corpid": self._corp_id, "corpsecret": self._secret},
            ),
            payload={"corpid": self._corp_id},
        )
        value = answer.get("access_token")
        if not value:
            raise ProtocolError(VENDOR, "gettoken answered without access_token")
        return Token.issued(str(value), now, float(answer.get("expires_in") or 7200))

    def _api(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
        allow: frozenset[int] | set[int] = frozenset(),
        partial: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        return self._caller.call(
            operation,
            lambda token: self._request(method, path, token, params=params, body=body, allow=allow),
            payload=body if body is not None else params,
            tokens=self._tokens,
            idempotent=idempotent,
            partial=partial,
        )

    def _request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        allow: frozenset[int] | set[int] = frozenset(),
    ) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        _, answer = request_json(
            self._http,
            VENDOR,
            method,
            self._base + path,
            self._wiring.clock(),
            params=query,
            body=body,
        )
        if isinstance(answer, dict) and answer.get("errcode") in allow:
            return answer
        return RULES.check(answer)


def _split(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return tuple(v for v in str(value or "").split("|") if v)


def _send_result(answer: dict[str, Any]) -> SendResult:
    msgid = answer.get("msgid")
    code = answer.get("response_code")
    return SendResult(
        msgid=str(msgid) if msgid else None,
        invalid_users=_split(answer.get("invaliduser")),
        invalid_parties=_split(answer.get("invalidparty")),
        invalid_tags=_split(answer.get("invalidtag")),
        unlicensed_users=_split(answer.get("unlicenseduser")),
        response_code=str(code) if code else None,
    )
