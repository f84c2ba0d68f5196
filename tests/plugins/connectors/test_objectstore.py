"""Object stores: S3 against moto's S3 server on 127.0.0.1, and the local-disk store.

Encryption uses Qiao's SM4-GCM primitive, injected as the store's encrypt/decrypt pair.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from qiao.core.crypto.errors import CryptoIntegrityError
from qiao.core.crypto.sm4gcm import NONCE_SIZE, sm4_gcm_decrypt, sm4_gcm_encrypt
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import NotFoundError, UnavailableError
from qiao.plugins.connectors.objectstore.base import CorruptObjectError, Encryption
from qiao.plugins.connectors.objectstore.links import LinkError, LinkExpiredError, LinkSigner
from qiao.plugins.connectors.objectstore.local import LocalDiskStore
from qiao.plugins.connectors.objectstore.s3 import S3Store

from .conftest import FakeTime, statuses
from .fakes import sigv4

ACCESS, SECRET, REGION, BUCKET = "qiao-access", "qiao-secret-key-000000", "us-east-1", "attachments"
DRAWING = b"%PDF-1.7 mould drawing " + os.urandom(4096)
LINK_SECRET = b"k" * 32


def sm4(key: bytes = b"0123456789abcdef") -> Encryption:
    def encrypt(data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + sm4_gcm_encrypt(key, nonce, data, aad)

    def decrypt(sealed: bytes, aad: bytes) -> bytes:
        return sm4_gcm_decrypt(key, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)

    return Encryption(encrypt, decrypt, (CryptoIntegrityError,))


def s3(
    endpoint: str,
    wiring: Wiring,
    encryption: Encryption | None = None,
    links: LinkSigner | None = None,
) -> S3Store:
    store = S3Store(
        endpoint,
        ACCESS,
        SECRET,
        BUCKET,
        region=REGION,
        secure=False,
        wiring=wiring,
        timeout=5,
        encryption=encryption,
        links=links,
    )
    store.ensure_bucket()
    return store


def raw_object(endpoint: str, key: str) -> bytes:
    plain = S3Store(endpoint, ACCESS, SECRET, BUCKET, region=REGION, secure=False)
    return plain.get(key)


def test_objects_round_trip_through_the_s3_server(
    moto_endpoint: str, wiring: Wiring, calls: list[CallRecord]
) -> None:
    store = s3(moto_endpoint, wiring)
    stored = store.put("accounts/a1/drawing.pdf", DRAWING, "application/pdf")
    assert stored.size == len(DRAWING) and not stored.encrypted
    assert store.get("accounts/a1/drawing.pdf") == DRAWING
    store.delete("accounts/a1/drawing.pdf")
    with pytest.raises(NotFoundError) as caught:
        store.get("accounts/a1/drawing.pdf")
    assert caught.value.code == "NoSuchKey" and not caught.value.retryable
    assert statuses(calls, "put") == ["ok"] and statuses(calls, "get") == ["ok", "error:NoSuchKey"]


def test_presigned_links_download_and_carry_a_signature_that_expires(
    moto_endpoint: str, wiring: Wiring, fake_time: FakeTime
) -> None:
    store = s3(moto_endpoint, wiring)
    store.put("tickets/t1/photo.bin", DRAWING, "application/octet-stream")
    fake_time.now = float(int(time.time()))
    url = store.link("tickets/t1/photo.bin", 600, filename="模具图纸.pdf")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == DRAWING
    assert "filename*=UTF-8''" in answer.headers.get("content-disposition", "")
    sigv4.verify(url, ACCESS, SECRET, REGION, now=fake_time.now + 599)
    with pytest.raises(sigv4.PresignError, match="expired"):
        sigv4.verify(url, ACCESS, SECRET, REGION, now=fake_time.now + 601)
    with pytest.raises(sigv4.PresignError, match="signature"):
        sigv4.verify(url.replace("photo.bin", "other.bin"), ACCESS, SECRET, REGION, fake_time.now)
    with pytest.raises(ValueError, match="1 s to"):
        store.link("tickets/t1/photo.bin", 8 * 24 * 3600)


def test_sm4_encrypted_objects_are_ciphertext_in_the_store(
    moto_endpoint: str, wiring: Wiring, fake_time: FakeTime
) -> None:
    links = LinkSigner(LINK_SECRET, "https://crm.example.cn/files", fake_time.clock)
    store = s3(moto_endpoint, wiring, encryption=sm4(), links=links)
    stored = store.put("contracts/c1.pdf", DRAWING, "application/pdf")
    assert stored.encrypted
    sealed = raw_object(moto_endpoint, "contracts/c1.pdf")
    assert DRAWING[:64] not in sealed and len(sealed) == len(DRAWING) + NONCE_SIZE + 16
    assert store.get("contracts/c1.pdf") == DRAWING
    url = store.link("contracts/c1.pdf", 300)
    assert url.startswith("https://crm.example.cn/files?")
    raw = S3Store(moto_endpoint, ACCESS, SECRET, BUCKET, region=REGION, secure=False)
    raw.put("contracts/c2.pdf", sealed, "application/pdf")
    with pytest.raises(CorruptObjectError):
        store.get("contracts/c2.pdf")
    with pytest.raises(ValueError, match="LinkSigner"):
        S3Store(moto_endpoint, ACCESS, SECRET, BUCKET, encryption=sm4())


def test_an_unreachable_store_is_retried_then_reported(
    wiring: Wiring, calls: list[CallRecord]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store(
        f"127.0.0.1:{port}", ACCESS, SECRET, BUCKET, secure=False, wiring=wiring, timeout=2
    )
    with pytest.raises(UnavailableError):
        store.get("x")
    assert statuses(calls, "get") == ["error:None"] * 4


def test_the_local_store_writes_encrypted_files_and_signs_expiring_links(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    links = LinkSigner(LINK_SECRET, "https://crm.example.cn/files", fake_time.clock)
    store = LocalDiskStore(tmp_path / "objects", links, encryption=sm4())
    store.put("accounts/a1/drawing.pdf", DRAWING, "application/pdf")
    on_disk = (tmp_path / "objects" / "accounts/a1/drawing.pdf").read_bytes()
    assert DRAWING[:64] not in on_disk
    assert store.verified("accounts/a1/drawing.pdf") == DRAWING
    assert store.info("accounts/a1/drawing.pdf").content_type == "application/pdf"
    url = store.link("accounts/a1/drawing.pdf", 60, filename="图纸.pdf")
    query = dict(httpx.URL(url).params)
    target = links.verify(query)
    assert (target.key, target.filename) == ("accounts/a1/drawing.pdf", "图纸.pdf")
    with pytest.raises(LinkError):
        links.verify({**query, "key": "accounts/a2/drawing.pdf"})
    with pytest.raises(LinkError):
        links.verify({**query, "expires": str(int(query["expires"]) + 3600)})
    fake_time.advance(61)
    with pytest.raises(LinkExpiredError):
        links.verify(query)
    (tmp_path / "objects" / "accounts/a1/drawing.pdf").write_bytes(on_disk[:-1] + b"\0")
    with pytest.raises(CorruptObjectError):
        store.get("accounts/a1/drawing.pdf")
    store.delete("accounts/a1/drawing.pdf")
    with pytest.raises(NotFoundError):
        store.get("accounts/a1/drawing.pdf")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs", "a//b", "a/./b", "", "a b", "x.meta.json"]
)
def test_unsafe_keys_are_refused(tmp_path: Path, fake_time: FakeTime, key: str) -> None:
    store = LocalDiskStore(tmp_path, LinkSigner(LINK_SECRET, "https://x", fake_time.clock))
    with pytest.raises(ValueError):
        store.put(key, b"x", "text/plain")
