"""Qiao's static files, at addresses that change with their content, cached for a year.

The files live in ``static/`` next to this module (``static/vendor/`` holds
those scripts/web-assets takes from npm) and ship inside the wheel. Each is
served at ``/static/<digest>/<path>``, the digest being the start of the
file's SHA-256: a new version of a file has a new address, so browsers and
proxies may keep every answer without asking again. Files are read, hashed
and (for gzip-accepting browsers) compressed once per process, on first use.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from qiao.core.edge.threads import in_thread

STATIC = Path(__file__).with_name("static")
#: Paths under this prefix are Qiao's; plugins cannot claim them.
PREFIX = "/static/"
ROUTE = PREFIX + "{digest}/{path:path}"
DIGEST_CHARS = 16
IMMUTABLE = "public, max-age=31536000, immutable"
#: Smaller files are sent as they are: compressing them gains too little.
GZIP_MIN_BYTES = 1024
_TEXT_TYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json"}


@dataclass(frozen=True)
class Asset:
    """One file: its bytes, their gzip form when worth it, and its address."""

    path: str
    digest: str
    media_type: str
    body: bytes
    gzipped: bytes | None

    @property
    def url(self) -> str:
        return f"{PREFIX}{self.digest}/{self.path}"


class StaticFiles:
    """The files of one folder, each read once; answers ``GET /static/<digest>/<path>``."""

    def __init__(self, folder: Path = STATIC) -> None:
        self.folder = folder.resolve()
        self._assets: dict[str, Asset | None] = {}
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        """The address of ``path`` (relative to the folder); KeyError if it is not there."""
        asset = self.find(path)
        if asset is None:
            raise KeyError(f"{path} is not among Qiao's static files ({self.folder})")
        return asset.url

    def find(self, path: str) -> Asset | None:
        """The file at ``path`` inside the folder, or None (also for paths leading out of it)."""
        with self._lock:
            if path not in self._assets:
                self._assets[path] = self._read(path)
            return self._assets[path]

    def _read(self, path: str) -> Asset | None:
        parts = PurePosixPath(path).parts
        if not parts or any(part.startswith(".") for part in parts):
            return None
        file = self.folder.joinpath(*parts).resolve()
        if not file.is_relative_to(self.folder) or not file.is_file():
            return None
        body = file.read_bytes()
        gzipped = gzip.compress(body, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        return Asset(
            path="/".join(parts),
            digest=hashlib.sha256(body).hexdigest()[:DIGEST_CHARS],
            media_type=_media_type(file),
            body=body,
            gzipped=gzipped if gzipped is not None and len(gzipped) < len(body) else None,
        )

    async def endpoint(self, request: Request) -> Response:
        asset = await in_thread(self.find, request.path_params["path"])
        if asset is None or asset.digest != request.path_params["digest"]:
            return PlainTextResponse("no such file", 404, headers={"Cache-Control": "no-store"})
        headers = {
            "Cache-Control": IMMUTABLE,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        body = asset.body
        if asset.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding")):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)


def _media_type(file: Path) -> str:
    kind = _TEXT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
    kind = kind or "application/octet-stream"
    text = kind.startswith("text/") or kind == "application/json"
    return f"{kind}; charset=utf-8" if text else kind


def _accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


#: One per process: the files of an installed Qiao do not change while it runs.
FILES = StaticFiles()
