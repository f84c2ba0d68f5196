"""A PKCS#11 key provider: the KEK is a key object inside a hardware security module.

:class:`Pkcs11KeyProvider` asks the device to encrypt and decrypt data keys
with an AES key object created there as sensitive and not extractable, so the
KEK's bits never reach Qiao's memory, disk or database; only wrapped data keys
pass through. It speaks PKCS#11 (Cryptoki) through python-pkcs11, which loads
the vendor's library (``libsofthsm2.so`` for SoftHSM2 in tests, the HSM's own
in production).

The wrapped form is ``format (1) | label length (1) | key label | nonce (12) |
AES-GCM ciphertext and tag (16)``, with associated data naming the purpose and
the header, so a wrapped key names the key object that unwraps it. A KEK is
rotated by creating a key object under a new label in the device and naming it
in ``[keys] key_label``; keys wrapped under an older label unwrap while that
object stays in the device (``qiao keys rotate`` re-wraps file KEKs only).

Opened sessions are kept per library, token and PIN for the process's life and
used under a lock: a PKCS#11 session runs one operation at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qiao.core.crypto.errors import KeyUnavailableError

PIN_ENV = "QIAO_PKCS11_PIN"
DEFAULT_LABEL = "qiao-kek"
_FORMAT = 1
_PURPOSE = b"qiao pkcs11 wrap v1: data key"
_NONCE = 12
_TAG_BITS = 128

_sessions: dict[tuple[str, str, str], Any] = {}
_sessions_lock = threading.Lock()


@dataclass(frozen=True)
class Pkcs11Settings:
    """``[keys]`` for ``provider = "pkcs11"``: the library, the token and the key's label."""

    library: str
    token: str
    pin: str
    key_label: str = DEFAULT_LABEL

    @classmethod
    def of(
        cls, table: Mapping[str, object], env: Mapping[str, str] | None = None
    ) -> Pkcs11Settings:
        """Read ``library``, ``token``, ``key_label`` and the PIN (``QIAO_PKCS11_PIN``)."""
        env = os.environ if env is None else env
        missing = [k for k in ("library", "token") if not table.get(k)]
        if missing:
            raise KeyUnavailableError(
                f'[keys] provider = "pkcs11" needs {" and ".join(missing)} = "..." '
                "(the vendor's PKCS#11 library and the token's label; docs/encryption.md)"
            )
        pin = env.get(PIN_ENV, "")
        if not pin:
            raise KeyUnavailableError(
                f"{PIN_ENV} is not set: the PKCS#11 token's user PIN comes from the "
                "environment (qiao.env), never from qiao.toml"
            )
        label = str(table.get("key_label") or DEFAULT_LABEL)
        return cls(str(table["library"]), str(table["token"]), pin, label)


class Pkcs11KeyProvider:
    """Wraps data keys with an AES key object that stays inside a PKCS#11 token."""

    def __init__(self, settings: Pkcs11Settings) -> None:
        import pkcs11

        self._pkcs11 = pkcs11
        self._settings = settings
        self._session = _session(settings)
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._key(settings.key_label)  # an absent key stops start-up, not the first write

    @property
    def kek_id(self) -> str:
        """``pkcs11:<key label>``."""
        return f"pkcs11:{self._settings.key_label}"

    def wrap(self, dek: bytes) -> bytes:
        label = self._settings.key_label.encode()
        header = bytes([_FORMAT, len(label)]) + label
        nonce = os.urandom(_NONCE)
        return header + nonce + self._run(label.decode(), "encrypt", dek, nonce, header)

    def unwrap(self, wrapped: bytes) -> bytes:
        if len(wrapped) < 2 or wrapped[0] != _FORMAT or len(wrapped) < 2 + wrapped[1] + _NONCE:
            raise KeyUnavailableError(
                "the wrapped data key is damaged or was not wrapped by a PKCS#11 provider"
            )
        end = 2 + wrapped[1]
        header, label = wrapped[:end], wrapped[2:end].decode("utf-8", errors="replace")
        nonce, sealed = wrapped[end : end + _NONCE], wrapped[end + _NONCE :]
        return self._run(label, "decrypt", sealed, nonce, header)

    def _run(self, label: str, operation: str, data: bytes, nonce: bytes, header: bytes) -> bytes:
        from pkcs11.mechanisms import GCMParams

        params = GCMParams(nonce, _PURPOSE + header, _TAG_BITS)
        key = self._key(label)
        try:
            with _sessions_lock:
                method = getattr(key, operation)
                return bytes(
                    method(data, mechanism=self._pkcs11.Mechanism.AES_GCM, mechanism_param=params)
                )
        except self._pkcs11.PKCS11Error as exc:
            what = "cannot unwrap this data key" if operation == "decrypt" else "cannot wrap"
            raise KeyUnavailableError(
                f"the PKCS#11 key {label!r} {what} ({type(exc).__name__}): the key is not the "
                "one that wrapped it, or the wrapped key was altered"
            ) from None

    def _key(self, label: str) -> Any:
        key = self._keys.get(label)
        if key is not None:
            return key
        pkcs11 = self._pkcs11
        try:
            with _sessions_lock:
                key = self._session.get_key(
                    label=label,
                    key_type=pkcs11.KeyType.AES,
                    object_class=pkcs11.ObjectClass.SECRET_KEY,
                )
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            raise KeyUnavailableError(
                f"the PKCS#11 token {self._settings.token!r} has no single AES key labelled "
                f"{label!r} ({type(exc).__name__}); create it in the device (docs/encryption.md)"
            ) from None
        with self._lock:
            self._keys[label] = key
        return key


def _session(settings: Pkcs11Settings) -> Any:
    """An open user session on the token, shared by the providers of this process."""
    import pkcs11

    ident = (settings.library, settings.token, settings.pin)
    with _sessions_lock:
        session = _sessions.get(ident)
        if session is not None:
            return session
        try:
            token = pkcs11.lib(settings.library).get_token(token_label=settings.token)
            try:
                session = token.open(user_pin=settings.pin)
            except pkcs11.UserAlreadyLoggedIn:  # logins are per process, not per session
                session = token.open()
        except pkcs11.NoSuchToken:
            raise KeyUnavailableError(
                f"the PKCS#11 library {settings.library} has no token labelled {settings.token!r}"
            ) from None
        except pkcs11.PinIncorrect:
            raise KeyUnavailableError(
                f"the PKCS#11 token {settings.token!r} refused the PIN in {PIN_ENV}"
            ) from None
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyUnavailableError(
                f"cannot open the PKCS#11 token {settings.token!r} through {settings.library}: "
                f"{exc or type(exc).__name__}"
            ) from None
        _sessions[ident] = session
        return session


def make_provider(table: Mapping[str, object]) -> Pkcs11KeyProvider:
    """The provider the ``[keys]`` table describes; an unreachable device raises."""
    return Pkcs11KeyProvider(Pkcs11Settings.of(table))
