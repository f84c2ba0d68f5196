"""The deployment's object store, built from its ``objectstore`` connector.

One active connector of vendor ``objectstore`` says where files go (``kind`` ``s3`` or
``local``), how large and of which types they may be, how long download links live and
whether objects are sealed with SM4. Sealing uses one random key per object, kept in
the attachment record's encrypted ``object_secret`` (so Qiao's key service protects,
rotates and backs it up like any field) and bound to the object key as associated data.

Download links: an S3 store without sealing hands out its own presigned GETs; a sealed
store, and the local disk always, hand out links to Qiao's download route, signed with a
secret kept sealed in a ``connector_token`` record and shared by every process.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from qiao.api import Actor, BadUserInput, ConfigurationError, Conflict, Runtime, Source
from qiao.plugins.connectors import host, settings
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.objectstore.base import Encryption, ObjectStore
from qiao.plugins.connectors.objectstore.links import LinkSigner
from qiao.plugins.connectors.objectstore.local import LocalDiskStore
from qiao.plugins.connectors.objectstore.s3 import S3Store
from qiao.plugins.connectors.settings import Connector

from .files import DEFAULT_ALLOWED

SYSTEM = Actor.system()
VENDOR = "objectstore"
DOWNLOAD_PATH = "/attachments/download"
LINK_SECRET_KEY = "objectstore:link-secret"
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_LINK_SECONDS = 300
NONCE = 12
TAG = 16
#: One attempt per request: a user waiting on an upload gets the store's answer at once.
NO_RETRY = RetryPolicy(max_retries=0)


@dataclass(frozen=True)
class StoreSettings:
    """What the ``objectstore`` connector's settings say, checked."""

    connector: Connector
    kind: str
    encrypt: bool
    max_bytes: int
    allowed_types: tuple[str, ...]
    link_seconds: int
    link_base: str

    @classmethod
    def of(cls, connector: Connector) -> StoreSettings:
        s = connector.settings
        kind = str(connector.setting("kind"))
        if kind not in {"s3", "local"}:
            raise ConfigurationError(f"connector {connector.name!r}: kind is s3 or local")
        allowed = s.get("allowed_types") or DEFAULT_ALLOWED
        return cls(
            connector=connector,
            kind=kind,
            encrypt=bool(s.get("encrypt")),
            max_bytes=int(s.get("max_bytes") or DEFAULT_MAX_BYTES),
            allowed_types=tuple(str(t) for t in allowed),
            link_seconds=int(s.get("link_seconds") or DEFAULT_LINK_SECONDS),
            link_base=str(s.get("link_base") or "").rstrip("/"),
        )


def check(values: Mapping[str, Any]) -> None:
    """Settings an ``objectstore`` connector cannot work with are refused when saved."""
    kind = values.get("kind")
    needed = {"s3": ("endpoint", "bucket", "access_key"), "local": ("directory",)}.get(str(kind))
    if needed is None:
        raise BadUserInput("an objectstore connector's kind is s3 or local", field="settings")
    missing = [k for k in needed if values.get(k) in (None, "")]
    if missing:
        raise BadUserInput(
            f"an objectstore connector of kind {kind} needs {', '.join(missing)}",
            field="settings",
        )


def active(runtime: Runtime) -> StoreSettings:
    """The deployment's store: its first active ``objectstore`` connector, by name."""
    found = settings.active_of(runtime, VENDOR)
    if not found:
        raise ConfigurationError(
            "attachments need an active objectstore connector (docs/connectors/attachments.md)"
        )
    return StoreSettings.of(found[0])


def of_id(runtime: Runtime, connector_id: str) -> StoreSettings:
    return StoreSettings.of(settings.by_id(runtime, connector_id))


def sealing(secret_hex: str) -> Encryption:
    """SM4-GCM under one object's key: ``nonce | ciphertext | tag``, the object key as AAD."""
    key = bytes.fromhex(secret_hex)

    def encrypt(data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        return nonce + encryptor.update(data) + encryptor.finalize() + encryptor.tag

    def decrypt(sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < NONCE + TAG:
            raise ValueError("a sealed object is shorter than its nonce and tag")
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(sealed[:NONCE])).decryptor()
        decryptor.authenticate_additional_data(aad)
        body = decryptor.update(sealed[NONCE:-TAG])
        return body + decryptor.finalize_with_tag(sealed[-TAG:])

    return Encryption(encrypt, decrypt, (InvalidTag, ValueError))


def new_object_secret() -> str:
    return secrets.token_hex(16)


def link_signer(runtime: Runtime, link_base: str = "") -> LinkSigner:
    """Signs links to the download route under ``link_base``, and checks them (whatever
    store took the file, and after another store took over)."""
    return LinkSigner(
        bytes.fromhex(link_secret(runtime)), link_base + DOWNLOAD_PATH, lambda: host.epoch(runtime)
    )


def link_secret(runtime: Runtime) -> str:
    """The deployment's link-signing secret, read once per process (it never changes).

    Called before a transaction that will need it: making it takes a transaction of its own.
    """
    kept: dict[str, str] = runtime.state("connectors.objectstore.link_secret", lambda _rt: {})
    if "secret" not in kept:
        kept["secret"] = _read_or_make_secret(runtime)
    return kept["secret"]


def _read_or_make_secret(runtime: Runtime) -> str:
    """The secret as stored, made by the first process that needs one."""
    for _ in range(2):
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn, "connector_token", filter={"key": {"eq": LINK_SECRET_KEY}}, actor=SYSTEM
            )
        if page.records and page.records[0].get("value"):
            return str(page.records[0]["value"])
        try:
            with runtime.records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
                runtime.records.create(
                    ctx, "connector_token", {"key": LINK_SECRET_KEY, "value": secrets.token_hex(32)}
                )
        except Conflict:
            continue  # another process made it first: read theirs
    raise ConfigurationError("could not read the download-link secret")


@contextmanager
def opened(
    runtime: Runtime, chosen: StoreSettings, object_secret: str | None
) -> Iterator[ObjectStore]:
    """The store for one piece of work, sealing with ``object_secret`` when given; S3
    calls are written to the connector's sync log when it ends."""
    connector = chosen.connector
    encryption = sealing(object_secret) if object_secret else None
    links = link_signer(runtime, chosen.link_base) if encryption or chosen.kind == "local" else None
    if chosen.kind == "local":
        assert links is not None
        root = Path(str(connector.setting("directory")))
        root = root if root.is_absolute() else runtime.config.root / root
        yield LocalDiskStore(root, links, encryption)
        return
    with host.wired(runtime, connector.id, "s3") as wiring:
        yield S3Store(
            str(connector.setting("endpoint")),
            str(connector.setting("access_key")),
            connector.secret("app_secret"),
            str(connector.setting("bucket")),
            region=str(connector.settings.get("region") or "us-east-1"),
            secure=bool(connector.settings.get("secure", True)),
            encryption=encryption,
            links=links,
            wiring=wiring,
            retry=NO_RETRY,
            timeout=10.0,
        )
