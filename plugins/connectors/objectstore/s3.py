"""Objects in an S3-compatible store (MinIO, Ceph RGW, Alibaba OSS in S3 mode, AWS S3).

The ``minio`` SDK speaks the protocol (SigV4 signing, path- or virtual-host-style
addressing, OSS detected by its domain); its own retries are turned off so the common
caller's retries, records and back-off apply. Presigned GET links are signed at the
injected clock's time, so they expire on the same clock as everything else.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from qiao.plugins.connectors.common.caller import Caller, Wiring
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    UnavailableError,
    VendorError,
)
from qiao.plugins.connectors.common.retry import RetryPolicy
from qiao.plugins.connectors.objectstore.base import (
    Encryption,
    StoredObject,
    check_key,
    check_lifetime,
    describe,
)
from qiao.plugins.connectors.objectstore.links import LinkSigner

VENDOR = "s3"
TRANSIENT = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})
REFUSED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
MISSING = frozenset({"NoSuchKey", "NoSuchBucket"})


class S3Store:
    """One bucket. ``endpoint`` is ``host:port``; ``links`` is required with encryption."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        region: str = "us-east-1",
        secure: bool = True,
        encryption: Encryption | None = None,
        links: LinkSigner | None = None,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if encryption is not None and links is None:
            raise ValueError("an encrypting store needs host-served links (a LinkSigner)")
        http = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout)
        )
        self._client = Minio(
            endpoint, access_key, secret_key, secure=secure, region=region, http_client=http
        )
        self._bucket = bucket
        self._encryption = encryption
        self._links = links
        self._wiring = wiring = wiring or Wiring()
        self._caller = Caller(VENDOR, wiring, retry=retry)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (for first set-up)."""

        def attempt(_token: str | None) -> None:
            with _mapped():
                if not self._client.bucket_exists(self._bucket):
                    self._client.make_bucket(self._bucket)

        self._caller.call("ensure_bucket", attempt, payload=self._bucket)

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        check_key(key)
        stored = describe(key, data, content_type, self._encryption is not None)
        body = self._encryption.encrypt(data, key.encode()) if self._encryption else data
        metadata: dict[str, str | list[str] | tuple[str]] = {
            "sha256": stored.sha256,
            "qiao-encrypted": "1" if self._encryption else "0",
        }

        def attempt(_token: str | None) -> None:
            with _mapped():
                self._client.put_object(
                    self._bucket, key, io.BytesIO(body), len(body), content_type, metadata
                )

        self._caller.call("put", attempt, payload=body)
        return stored

    def get(self, key: str) -> bytes:
        check_key(key)

        def attempt(_token: str | None) -> bytes:
            with _mapped():
                response = self._client.get_object(self._bucket, key)
                try:
                    return response.read()
                finally:
                    response.close()
                    response.release_conn()

        body = self._caller.call("get", attempt, payload=key)
        return self._encryption.open(VENDOR, body, key) if self._encryption else body

    def delete(self, key: str) -> None:
        check_key(key)

        def attempt(_token: str | None) -> None:
            with _mapped():
                self._client.remove_object(self._bucket, key)

        self._caller.call("delete", attempt, payload=key)

    def link(self, key: str, expires_in: int, filename: str | None = None) -> str:
        """A presigned GET (or, when encrypting, a host-served link) valid ``expires_in`` s."""
        check_key(key)
        check_lifetime(expires_in)
        if self._links is not None and self._encryption is not None:
            return self._links.sign(key, expires_in, filename)
        headers: dict[str, Any] = {}
        if filename:
            headers["response-content-disposition"] = (
                f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
            )
        now = dt.datetime.fromtimestamp(self._wiring.clock(), dt.UTC)
        with _mapped():
            return self._client.presigned_get_object(
                self._bucket,
                key,
                expires=dt.timedelta(seconds=expires_in),
                response_headers=headers or None,
                request_date=now,
            )


@contextmanager
def _mapped() -> Iterator[None]:
    """Turns the SDK's and urllib3's exceptions into connector errors."""
    try:
        yield
    except S3Error as error:
        raise _s3_error(error) from None
    except ServerError as error:
        raise UnavailableError(VENDOR, str(error), code=f"http_{error.status_code}") from None
    except InvalidResponseError as error:
        raise VendorError(VENDOR, f"the store answered outside the protocol: {error}") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise UnavailableError(VENDOR, f"object store unreachable: {error}") from None


def _s3_error(error: S3Error) -> ConnectorError:
    code, message = error.code or "unknown", error.message or str(error)
    if code in MISSING:
        return NotFoundError(VENDOR, message, code=code)
    if code in TRANSIENT:
        return UnavailableError(VENDOR, message, code=code)
    if code in REFUSED:
        return AuthenticationError(VENDOR, message, code=code)
    return VendorError(VENDOR, message, code=code)
