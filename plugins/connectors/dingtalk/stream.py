"""DingTalk Stream mode: events over a WebSocket the app opens, instead of HTTP callbacks.

The app asks ``POST /v1.0/gateway/connections/open`` (``clientId`` = app key,
``clientSecret``, its ``subscriptions``) for an ``endpoint`` (wss) and a ``ticket`` valid
90 s for one connection, and connects to ``{endpoint}?ticket=``. Frames are JSON
``{specVersion, type: SYSTEM | EVENT | CALLBACK, headers: {topic, messageId, ...,
eventId, eventType}, data}`` where ``data`` is itself JSON text. Every frame but a
SYSTEM one is answered ``{code: 200, headers: {contentType, messageId}, message, data}``
whose ``data`` says ``SUCCESS``, or ``LATER`` to have it sent again. SYSTEM ``ping`` is
answered with its own headers and data; SYSTEM ``disconnect`` announces the server is
closing the connection, after which a new ticket is needed. DingTalk sends an event
again until it is acknowledged, so receivers dedupe on ``eventId``. No token is needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from qiao.plugins.connectors.common.errors import AuthenticationError, ProtocolError

VENDOR = "dingtalk"
OPEN_PATH = "/v1.0/gateway/connections/open"
ALL_EVENTS = ({"type": "EVENT", "topic": "*"},)

Ending = Literal["disconnect", "closed", "stopped"]


@dataclass(frozen=True)
class Ticket:
    endpoint: str
    ticket: str


@dataclass(frozen=True)
class Frame:
    type: str
    headers: Mapping[str, Any]
    data: str

    @property
    def topic(self) -> str:
        return str(self.headers.get("topic") or "")

    @property
    def message_id(self) -> str:
        return str(self.headers.get("messageId") or "")

    def payload(self) -> dict[str, Any]:
        """``data`` read as the JSON object it carries."""
        try:
            value = json.loads(self.data or "{}")
        except ValueError as error:
            raise ProtocolError(VENDOR, f"a {self.type} frame's data is not JSON") from error
        if not isinstance(value, dict):
            raise ProtocolError(VENDOR, f"a {self.type} frame's data is not a JSON object")
        return value

    @classmethod
    def parse(cls, text: str | bytes) -> Frame:
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ProtocolError(VENDOR, "a stream frame is not JSON") from error
        if not isinstance(value, dict) or not isinstance(value.get("headers"), dict):
            raise ProtocolError(VENDOR, "a stream frame without headers")
        return cls(str(value.get("type") or ""), value["headers"], str(value.get("data") or ""))


def ack(frame: Frame, status: Literal["SUCCESS", "LATER"]) -> str:
    """The answer to an EVENT or CALLBACK frame."""
    data = {"status": status, "message": "success" if status == "SUCCESS" else "later"}
    return json.dumps(
        {
            "code": 200,
            "headers": {"contentType": "application/json", "messageId": frame.message_id},
            "message": "OK",
            "data": json.dumps(data),
        }
    )


def pong(frame: Frame) -> str:
    return json.dumps(
        {"code": 200, "headers": dict(frame.headers), "message": "OK", "data": frame.data}
    )


def serve(
    ticket: Ticket,
    handle: Callable[[Frame], bool],
    *,
    stop: Callable[[], bool] = lambda: False,
    poll: float = 1.0,
    open_timeout: float = 10.0,
) -> Ending:
    """One connection: frames handed to ``handle`` (true: acknowledged SUCCESS, false:
    LATER) until the server disconnects or closes, or ``stop()`` (checked every ``poll``
    seconds) says so. A ticket the gateway refuses raises :class:`AuthenticationError`."""
    url = f"{ticket.endpoint}?ticket={quote(ticket.ticket, safe='')}"
    try:
        socket = connect(url, open_timeout=open_timeout, proxy=None)
    except InvalidStatus as error:
        status = error.response.status_code
        raise AuthenticationError(
            VENDOR, f"the stream gateway refused the ticket (HTTP {status})"
        ) from error
    with socket:
        while not stop():
            try:
                text = socket.recv(timeout=poll)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return "closed"
            frame = Frame.parse(text)
            if frame.type == "SYSTEM":
                if frame.topic == "disconnect":
                    return "disconnect"
                if frame.topic == "ping":
                    socket.send(pong(frame))
                continue
            socket.send(ack(frame, "SUCCESS" if handle(frame) else "LATER"))
    return "stopped"
