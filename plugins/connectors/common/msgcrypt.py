"""The callback cipher WeCom and DingTalk share (the "WXBizMsgCrypt" scheme).

Both vendors encrypt callback bodies the same way: the key is the 43-character
EncodingAESKey plus ``=`` decoded from base64 (32 bytes, AES-256); the cipher is CBC with
the key's first 16 bytes as IV; the plaintext is 16 random bytes, the message length as a
big-endian uint32, the message, and the receiver's id (WeCom: the corp id; DingTalk: the
app key, corp id or suite key), padded PKCS#7 to a 32-byte block; the result is base64.
The signature is the SHA-1 hex of the token, timestamp, nonce and ciphertext, sorted as
strings and joined. See docs/connectors/wecom.md for the official vectors it is tested on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from qiao.plugins.connectors.common.errors import CallbackDecryptError, CallbackSignatureError

BLOCK = 32
"""The scheme pads to 32 bytes, not AES's 16: a quirk both vendors' SDKs share."""


class MessageCrypt:
    """Signs, verifies, encrypts and decrypts callback messages for one receiver."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("the EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ValueError("the EncodingAESKey is not base64") from None
        self._token = token
        self._key = key
        self._receive_id = receive_id

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """SHA-1 hex of the sorted, joined token, timestamp, nonce and ciphertext."""
        parts = sorted([self._token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode()).hexdigest()

    def verify(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise :class:`CallbackSignatureError` unless ``signature`` signs the ciphertext."""
        expected = self.signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise CallbackSignatureError("the callback signature does not match the token")

    def open(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        """The plaintext of a signed ciphertext, after checking signature and receiver."""
        self.verify(signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; the receiver id must be this receiver's."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error:
            raise CallbackDecryptError("the ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise CallbackDecryptError("the ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        plain = _unpad(padded)
        if len(plain) < 20:
            raise CallbackDecryptError("the plaintext is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message = plain[20 : 20 + length]
        receiver = plain[20 + length :]
        if len(message) != length:
            raise CallbackDecryptError("the plaintext is shorter than its length field")
        if self._receive_id and receiver.decode(errors="replace") != self._receive_id:
            raise CallbackDecryptError("the message is addressed to another receiver")
        return message

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        """Base64 ciphertext of ``message`` for this receiver (``random16`` only for tests)."""
        prefix = random16 if random16 is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("the random prefix must be 16 bytes")
        plain = prefix + struct.pack(">I", len(message)) + message + self._receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        data = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(data).decode()

    def seal(self, message: bytes, timestamp: str, nonce: str) -> tuple[str, str]:
        """``(ciphertext, signature)`` of a reply."""
        encrypted = self.encrypt(message)
        return encrypted, self.signature(timestamp, nonce, encrypted)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))


def _unpad(padded: bytes) -> bytes:
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise CallbackDecryptError("the plaintext padding is wrong (another key?)")
    return padded[:-pad]
