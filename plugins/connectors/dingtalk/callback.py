"""DingTalk HTTP callbacks (事件订阅, HTTP push mode): verify, decrypt, answer, dedupe.

DingTalk POSTs ``{"encrypt": ...}`` with ``signature`` (or ``msg_signature``),
``timestamp`` (or ``timeStamp``) and ``nonce`` in the query, encrypted as WeCom does with
the app key (or corp id, or suite key) as receiver id. The receiver must answer within
1.5 seconds with the encrypted word ``success``, signed; the first event after
configuring the URL is ``{"EventType": "check_url"}``, answered the same way. DingTalk
re-sends what it thinks was missed, so an event is processed once per replay key: the
event type and the SHA-256 of its plaintext (the ciphertext differs on each delivery,
the plaintext does not).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from qiao.plugins.connectors.common.errors import CallbackDecryptError
from qiao.plugins.connectors.common.msgcrypt import MessageCrypt
from qiao.plugins.connectors.common.replay import Inbound, MemorySeenKeys, SeenKeys
from qiao.plugins.connectors.common.tokens import Clock

SUCCESS = b"success"


def replay_key(plaintext: bytes, message: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(plaintext).hexdigest()
    return f"dingtalk:{message.get('EventType', '')}:{digest}"


class DingTalkCallback:
    """The receiving end of one app's HTTP callback URL."""

    def __init__(
        self,
        token: str,
        aes_key: str,
        owner_key: str,
        *,
        seen: SeenKeys | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.crypt = MessageCrypt(token, aes_key, owner_key)
        self._seen = seen or MemorySeenKeys()
        self._clock = clock

    def receive(self, query: Mapping[str, str], body: bytes) -> Inbound:
        """Verify and decrypt a callback; ``first`` is false for a replay."""
        signature = query.get("msg_signature") or query.get("signature") or ""
        timestamp = query.get("timeStamp") or query.get("timestamp") or ""
        nonce = query.get("nonce") or ""
        try:
            envelope = json.loads(body)
        except ValueError:
            raise CallbackDecryptError("the callback is not JSON") from None
        encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
        if not isinstance(encrypted, str) or not encrypted:
            raise CallbackDecryptError("the callback has no encrypt field")
        plain = self.crypt.open(signature, timestamp, nonce, encrypted)
        try:
            message = json.loads(plain)
        except ValueError:
            raise CallbackDecryptError("the decrypted event is not JSON") from None
        if not isinstance(message, dict):
            raise CallbackDecryptError("the decrypted event is not a JSON object")
        key = replay_key(plain, message)
        return Inbound(message, key, self._seen.first(key, self._clock()))

    def reply_success(self) -> dict[str, str]:
        """The body that tells DingTalk the event was received (also for check_url)."""
        timestamp = str(int(self._clock() * 1000))
        nonce = secrets.token_hex(4)
        encrypted, signature = self.crypt.seal(SUCCESS, timestamp, nonce)
        return {
            "msg_signature": signature,
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypted,
        }
