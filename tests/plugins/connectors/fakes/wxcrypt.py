"""The vendor side of the WXBizMsgCrypt callback cipher, written apart from the connector's.

Used by the WeCom and DingTalk fakes to encrypt the callbacks they push and to read the
replies they get. It pads with ``cryptography``'s PKCS7 at 256 bits (the 32-byte block the
scheme uses) where the connector pads by hand, so each checks the other.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(aes_key: str, receive_id: str, message: bytes) -> str:
    key = base64.b64decode(aes_key + "=")
    body = os.urandom(16) + len(message).to_bytes(4, "big") + message + receive_id.encode()
    padder = padding.PKCS7(256).padder()
    padded = padder.update(body) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def decrypt(aes_key: str, encrypted: str) -> tuple[bytes, str]:
    """``(message, receive_id)`` of a ciphertext."""
    key = base64.b64decode(aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    body = unpadder.update(padded) + unpadder.finalize()
    size = int.from_bytes(body[16:20], "big")
    return body[20 : 20 + size], body[20 + size :].decode()
