"""Objects as files under one directory, with the same interface as the S3 store.

Writes go to a temporary file renamed into place, so a reader never sees half an
object; each object has a small JSON sidecar with its content type and checksum.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from qiao.plugins.connectors.common.errors import NotFoundError
from qiao.plugins.connectors.objectstore.base import (
    CorruptObjectError,
    Encryption,
    StoredObject,
    check_key,
    describe,
)
from qiao.plugins.connectors.objectstore.links import LinkSigner

VENDOR = "local"


class LocalDiskStore:
    def __init__(self, root: Path, links: LinkSigner, encryption: Encryption | None = None) -> None:
        self._root = root
        self._links = links
        self._encryption = encryption
        root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self._path(key)
        stored = describe(key, data, content_type, self._encryption is not None)
        body = self._encryption.encrypt(data, key.encode()) if self._encryption else data
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, body)
        meta = {"content_type": content_type, "sha256": stored.sha256, "size": stored.size}
        _write_atomically(_meta_path(path), json.dumps(meta).encode())
        return stored

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(VENDOR, f"no object {key!r}") from None
        return self._encryption.open(VENDOR, body, key) if self._encryption else body

    def info(self, key: str) -> StoredObject:
        try:
            meta = json.loads(_meta_path(self._path(key)).read_text())
        except FileNotFoundError:
            raise NotFoundError(VENDOR, f"no object {key!r}") from None
        return StoredObject(
            key, meta["size"], meta["sha256"], meta["content_type"], self._encryption is not None
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)

    def link(self, key: str, expires_in: int, filename: str | None = None) -> str:
        return self._links.sign(key, expires_in, filename)

    def verified(self, key: str) -> bytes:
        """The object, after checking it against the checksum written with it."""
        data = self.get(key)
        if describe(key, data, "", False).sha256 != self.info(key).sha256:
            raise CorruptObjectError(VENDOR, f"object {key!r} does not match its checksum")
        return data

    def _path(self, key: str) -> Path:
        if key.endswith(".meta.json") or "/.tmp-" in f"/{key}":
            raise ValueError(f"{key!r} is a name the store keeps for itself")
        path = (self._root / check_key(key)).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"{key!r} leaves the store's directory")
        return path


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
