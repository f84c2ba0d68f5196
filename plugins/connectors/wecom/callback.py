"""WeCom callbacks: URL verification, decrypting XML and JSON messages, replies, replays.

WeCom signs and encrypts every callback (:mod:`~qiao.plugins.connectors.common.msgcrypt`).
The receiver answers the verification GET with the decrypted ``echostr``, and each POST
within 5 seconds; WeCom re-sends an unanswered POST up to three times, so a message is
processed only the first time its replay key (MsgId, or FromUserName + CreateTime for
events, as WeCom advises) is seen.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from qiao.plugins.connectors.common.errors import CallbackDecryptError
from qiao.plugins.connectors.common.msgcrypt import MessageCrypt
from qiao.plugins.connectors.common.replay import Inbound, MemorySeenKeys, SeenKeys
from qiao.plugins.connectors.common.tokens import Clock


def replay_key(message: dict[str, Any]) -> str:
    """MsgId for messages; FromUserName, CreateTime and the event name for events."""
    msg_id = message.get("MsgId") or message.get("msgid")
    if msg_id:
        return f"wecom:msg:{msg_id}"
    sender = message.get("FromUserName") or message.get("fromusername") or ""
    created = message.get("CreateTime") or message.get("createtime") or ""
    event = message.get("Event") or message.get("event") or ""
    if not sender or not created:
        raise CallbackDecryptError("the message has neither MsgId nor FromUserName+CreateTime")
    return f"wecom:event:{sender}:{created}:{event}"


class WeComCallback:
    """The receiving end of one app's callback URL (token, EncodingAESKey, corp id)."""

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        *,
        seen: SeenKeys | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.crypt = MessageCrypt(token, encoding_aes_key, corp_id)
        self._seen = seen or MemorySeenKeys()
        self._clock = clock

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The plaintext to answer WeCom's verification GET with."""
        return self.crypt.open(msg_signature, timestamp, nonce, echostr).decode()

    def receive_xml(self, msg_signature: str, timestamp: str, nonce: str, body: bytes) -> Inbound:
        """Verify, decrypt and parse an XML callback (the default format)."""
        envelope = _parse_xml(body)
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise CallbackDecryptError("the callback has no Encrypt element")
        plain = self.crypt.open(msg_signature, timestamp, nonce, encrypted)
        return self._inbound(_parse_xml(plain))

    def receive_json(self, msg_signature: str, timestamp: str, nonce: str, body: bytes) -> Inbound:
        """Verify, decrypt and parse a JSON-format callback (``{"encrypt": ...}``)."""
        envelope = _parse_json(body)
        encrypted = envelope.get("encrypt") or envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise CallbackDecryptError("the callback has no encrypt field")
        plain = self.crypt.open(msg_signature, timestamp, nonce, encrypted)
        return self._inbound(_parse_json(plain))

    def reply_xml(self, message_xml: str, timestamp: str, nonce: str) -> str:
        """A passive reply: ``message_xml`` encrypted in WeCom's reply envelope."""
        encrypted, signature = self.crypt.seal(message_xml.encode(), timestamp, nonce)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{escape(timestamp)}</TimeStamp>"
            f"<Nonce><![CDATA[{escape(nonce)}]]></Nonce></xml>"
        )

    def reply_json(self, message: dict[str, Any], timestamp: str, nonce: str) -> str:
        """A passive reply in the JSON format."""
        plain = json.dumps(message, ensure_ascii=False).encode()
        encrypted, signature = self.crypt.seal(plain, timestamp, nonce)
        return json.dumps(
            {
                "encrypt": encrypted,
                "msgsignature": signature,
                "timestamp": timestamp,
                "nonce": nonce,
            }
        )

    def _inbound(self, message: dict[str, Any]) -> Inbound:
        key = replay_key(message)
        return Inbound(message, key, self._seen.first(key, self._clock()))


def _parse_xml(data: bytes) -> dict[str, Any]:
    """A WeCom XML document as a dict; a DTD is refused, so no entity can be expanded."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise CallbackDecryptError("callback XML must not carry a DTD")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise CallbackDecryptError(f"the callback is not XML: {error}") from None
    return _element(root)


def _element(node: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in node:
        value: Any = _element(child) if len(child) else (child.text or "")
        if child.tag in out:
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise CallbackDecryptError("the callback is not JSON") from None
    if not isinstance(value, dict):
        raise CallbackDecryptError("the callback is not a JSON object")
    return value
