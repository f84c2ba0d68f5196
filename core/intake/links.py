"""Signed intake links: ``/intake/<form>?r=<record id>&s=<signature>``.

The signature is an SM3-HMAC of the form and the record under the form's
secret, so a link (and the QR code that carries it) cannot be made for another
record or altered; changing the secret withdraws every link at once.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

from qiao.core.crypto.sm3 import hmac_sm3

#: Hex characters of the signature kept in links (128 bits).
SIGNATURE_LENGTH = 32


def new_secret() -> str:
    return secrets.token_hex(32)


def sign(secret: str, form: str, record_id: str) -> str:
    message = f"intake:{form}:{record_id}".encode()
    return hmac_sm3(bytes.fromhex(secret), message).hex()[:SIGNATURE_LENGTH]


def verify(secret: str, form: str, record_id: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, form, record_id), signature)


def intake_path(secret: str, form: str, record_id: str | None = None) -> str:
    """The form's path, with a signed record when given."""
    if record_id is None:
        return f"/intake/{form}"
    query = urlencode({"r": record_id, "s": sign(secret, form, record_id)})
    return f"/intake/{form}?{query}"
