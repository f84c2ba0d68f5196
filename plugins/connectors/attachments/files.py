"""What an uploaded file is and what it may be called: content sniffed, names made safe.

The type a client declares is not trusted: the first bytes decide (a PDF is a PDF
whatever its name says), and only the deployment's allow-list is accepted. Office
documents are ZIP or OLE containers underneath, so for those the name's extension says
which one, never more than the container allows. The signatures are the few the
allow-list can name; a sniffing library (filetype, puremagic) would recognise hundreds
of types that are refused anyway.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath

from qiao.api import BadUserInput, UnsupportedMediaType

DEFAULT_ALLOWED = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword",
    "application/vnd.ms-excel",
)
#: Longest file name kept, in UTF-8 bytes (what most file systems allow).
MAX_NAME_BYTES = 255

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
)
_OOXML = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_OLE = {".doc": "application/msword", ".xls": "application/vnd.ms-excel"}
_TEXT = {".csv": "text/csv"}


def sniff(data: bytes, filename: str) -> str:
    """The media type ``data`` really has (``application/octet-stream`` when unknown)."""
    suffix = PurePosixPath(filename).suffix.lower()
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in _SIGNATURES:
        if data.startswith(magic):
            if media_type == "application/zip":
                return _OOXML.get(suffix, media_type)
            if media_type == "application/x-ole-storage":
                return _OLE.get(suffix, "application/octet-stream")
            return media_type
    if _is_text(data):
        return _TEXT.get(suffix, "text/plain")
    return "application/octet-stream"


def _is_text(data: bytes) -> bool:
    """UTF-8 (or UTF-16 with a BOM, as Excel writes CSV) without control characters."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return False
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return False
    return not any(unicodedata.category(c) == "Cc" and c not in "\t\r\n\f" for c in text)


def checked_type(data: bytes, filename: str, allowed: Iterable[str]) -> str:
    """The sniffed type of ``data``, or UNSUPPORTED_MEDIA_TYPE when the list does not allow it."""
    media_type = sniff(data, filename)
    allowed = tuple(allowed)
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"files of type {media_type} are not accepted here; allowed: {', '.join(allowed)}"
        )
    return media_type


def safe_name(name: str | None) -> str:
    """``name`` as a plain file name: no directories, no control or format characters,
    no leading dots, NFC-normalised, at most 255 UTF-8 bytes with its extension kept.
    Chinese and other scripts are kept as they are."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Co"})
    text = text.strip().lstrip(".").strip()
    if not text:
        raise BadUserInput("give the file a name (filename)", field="filename")
    if len(text.encode()) > MAX_NAME_BYTES:
        suffix = PurePosixPath(text).suffix
        suffix = suffix if len(suffix.encode()) <= 16 else ""
        stem = text[: len(text) - len(suffix)] if suffix else text
        budget = MAX_NAME_BYTES - len(suffix.encode())
        stem = stem.encode()[:budget].decode(errors="ignore")
        text = stem + suffix
    return text
